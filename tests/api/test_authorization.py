"""Every role and every scope-map action against every endpoint it should open or not,
in process: a 403 for what the caller may not do, success for what it may, with Basic
credentials on each request (an identity's client id and secret, or a token's name and
password). The identities, assignments, scope maps and tokens are made as the
management API makes them (`Administration`); tests/integration/test_auth.py drives the
same logins through real clients."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import images
import pytest
from endpoint import AppEndpoint

from dockyard.metadata.records import RegistryRecord
from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings

ADMIN_PASSWORD = "admin-secret-for-tests"
HOST = "localhost:5000"

# What each endpoint needs, as (method, path template, data actions any of which do).
ENDPOINTS = [
    ("GET", "/v2/{repo}/manifests/v1", ("content/read",)),
    ("HEAD", "/v2/{repo}/blobs/{layer}", ("content/read",)),
    ("GET", "/v2/{repo}/tags/list", ("content/read",)),
    ("GET", "/v2/{repo}/referrers/{layer}", ("content/read",)),
    ("POST", "/v2/{repo}/blobs/uploads/", ("content/write",)),
    ("DELETE", "/v2/{repo}/manifests/v0", ("content/delete",)),
    ("GET", "/v2/_catalog", ("catalog",)),
    ("GET", "/acr/v1/{repo}", ("metadata/read",)),
    ("GET", "/acr/v1/{repo}/_tags", ("metadata/read",)),
    ("GET", "/acr/v1/{repo}/_manifests", ("metadata/read",)),
    ("PATCH", "/acr/v1/{repo}/_tags/v1", ("metadata/write",)),
    ("DELETE", "/acr/v1/{repo}/_tags/v0", ("content/delete", "metadata/write")),
    ("GET", "/acr/v1/_catalog", ("catalog",)),
]
READS = {"content/read", "metadata/read"}
ROLE_ACTIONS = {
    "AcrPull": READS | {"catalog"},
    "AcrPush": READS | {"content/write", "metadata/write", "catalog"},
    "AcrDelete": {"content/delete", "metadata/read", "catalog"},
    # Besides pulling held images and setting their state (tests/api/test_quarantine.py).
    "AcrQuarantineReader": READS | {"catalog"},
    "AcrQuarantineWriter": READS | {"catalog"},
    "Reader": READS | {"catalog"},
    "Contributor": READS | {"content/write", "content/delete", "metadata/write", "catalog"},
    "Container Registry Repository Reader": READS,
    "Container Registry Repository Writer": READS | {"content/write", "metadata/write"},
    "Container Registry Repository Contributor": READS
    | {"content/write", "content/delete", "metadata/write"},
    "Container Registry Repository Catalog Lister": {"catalog"},
}
SCOPE_ACTIONS = [
    "content/read",
    "content/write",
    "content/delete",
    "metadata/read",
    "metadata/write",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppEndpoint]:
    settings = load_settings(
        None,
        data_dir=tmp_path_factory.mktemp("matrix"),
        registry={"default_name": "dockyard", "login_server": HOST},
    )
    prepare(settings)
    endpoint = AppEndpoint(build_services(settings), host=HOST)
    endpoint.services.administration.set_admin_user(registry(endpoint), True, ADMIN_PASSWORD)
    yield endpoint
    endpoint.close()


def registry(server: AppEndpoint) -> RegistryRecord:
    return next(r for r in server.services.meta.registries() if r.name == "dockyard")


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def seed(server: AppEndpoint, repo: str, tag: str = "v1") -> bytes:
    """Push a small image as the admin user; returns its layer."""
    return server.push_small_image(repo, tag, basic("dockyard", ADMIN_PASSWORD))[1]


def check_matrix(server: AppEndpoint, user: str, password: str, repo: str, allowed: set[str]):
    digest = images.sha256_digest(seed(server, repo))
    with server.client() as http:
        for method, template, needs in ENDPOINTS:
            if method == "DELETE":
                seed(server, repo, "v0")
            path = template.format(repo=repo, layer=digest)
            body = {"json": {"listEnabled": True}} if method == "PATCH" else {}
            response = http.request(method, path, headers=basic(user, password), **body)
            ok = response.status_code < 400
            assert ok == bool(allowed & set(needs)), (
                user,
                method,
                path,
                response.status_code,
                response.text,
            )
            if not ok:
                assert response.status_code == 403, (user, method, path, response.status_code)


@pytest.mark.parametrize("role", sorted(ROLE_ACTIONS))
def test_role_matrix(server, role):
    name = "r-" + role.lower().replace(" ", "-")
    administration = server.services.administration
    identity, secret = administration.create_identity(name)
    repository_scoped = role.startswith("Container Registry Repository") and "Lister" not in role
    repository = f"{name}/*" if repository_scoped else None
    administration.assign_role(registry(server), name, role, repository)
    check_matrix(server, identity.id, secret, f"{name}/app", ROLE_ACTIONS[role])


@pytest.mark.parametrize("action", SCOPE_ACTIONS)
def test_scope_map_matrix(server, action):
    name = "sm-" + action.replace("/", "-")
    administration = server.services.administration
    administration.put_scope_map(registry(server), name, [f"repositories/{name}/*/{action}"])
    password = administration.create_token(registry(server), name, name).passwords["password1"]
    check_matrix(server, name, password, f"{name}/app", {action})
    # Outside the scope map's repositories, nothing.
    with server.client() as http:
        other = http.get("/v2/elsewhere/tags/list", headers=basic(name, password))
    assert other.status_code == 403
