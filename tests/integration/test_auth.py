"""Logins and permissions against a real server: the admin user, repository-scoped
tokens with scope maps, identities with roles, the token service's grants, anonymous
pull, and tokens that must be refused (expired, tampered, wrong audience, revoked). Every
role and scope-map action against every endpoint, and what the token service itself
decides, are tested in process: tests/api/test_authorization.py, test_token_service.py."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import images
import jwt
import pytest
from conftest import RegistryServer, printed, run_cli

ADMIN_PASSWORD = "admin-secret-for-tests"
NULL_GUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("secured")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=("--max-failed-logins", "3"),
        env={"DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    ).start() as server:
        yield server


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def token_for(server: RegistryServer, user: str, password: str, *scopes: str) -> str:
    response = httpx.get(
        f"{server.url}/oauth2/token",
        params=[("service", server.host), *(("scope", s) for s in scopes)],
        headers=basic(user, password),
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def seed(server: RegistryServer, repo: str, tag: str = "v1") -> tuple[bytes, bytes]:
    """Push a small image as the admin user; returns (manifest, layer)."""
    return server.push_small_image(repo, tag, basic("dockyard", ADMIN_PASSWORD))


# -- the challenge and the admin user -----------------------------------------------------------


def test_unauthenticated_requests_get_the_token_challenge(secured):
    base = httpx.get(f"{secured.url}/v2/")
    assert base.status_code == 401
    challenge = base.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'realm="{secured.url}/oauth2/token"' in challenge
    assert f'service="{secured.host}"' in challenge
    pull = httpx.get(f"{secured.url}/v2/app/manifests/v1")
    assert pull.status_code == 401
    assert 'scope="repository:app:pull"' in pull.headers["WWW-Authenticate"]
    body = pull.json()["errors"][0]
    assert body["code"] == "UNAUTHORIZED"
    assert body["detail"] == [{"Type": "repository", "Name": "app", "Action": "pull"}]
    push = httpx.post(f"{secured.url}/v2/app/blobs/uploads/")
    assert 'scope="repository:app:push,pull"' in push.headers["WWW-Authenticate"]
    catalog = httpx.get(f"{secured.url}/v2/_catalog")
    assert 'scope="registry:catalog:*"' in catalog.headers["WWW-Authenticate"]


def test_admin_user_pushes_and_pulls_with_skopeo(secured, skopeo, tmp_path):
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": images.busybox_image()})
    creds = f"dockyard:{ADMIN_PASSWORD}"
    target = f"docker://{secured.host}/admin/busybox:1"
    skopeo("copy", "--dest-tls-verify=false", "--dest-creds", creds, f"oci:{layout}:latest", target)
    inspected = skopeo("inspect", "--tls-verify=false", "--creds", creds, target)
    assert images.busybox_image().digest in inspected.stdout
    refused = skopeo("inspect", "--tls-verify=false", target, check=False)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower()
    wrong = skopeo("inspect", "--tls-verify=false", "--creds", "dockyard:nope", target, check=False)
    assert wrong.returncode != 0


def test_admin_credentials_from_the_cli(secured):
    output = secured.manage("credential", "show", "-n", "dockyard")
    assert printed(output, "username") == "dockyard"
    assert printed(output, "password") == ADMIN_PASSWORD
    assert printed(output, "password2")


def test_basic_auth_directly_on_v2(secured):
    manifest, _ = seed(secured, "basic/app")
    response = httpx.get(
        f"{secured.url}/v2/basic/app/manifests/v1", headers=basic("dockyard", ADMIN_PASSWORD)
    )
    assert response.status_code == 200 and response.content == manifest


# -- the token service -----------------------------------------------------------------------


def test_token_grants_only_what_the_principal_may(secured):
    secured.manage(
        "scope-map",
        "create",
        "-n",
        "reader",
        "-r",
        "dockyard",
        "--repository",
        "svc/* content/read",
    )
    output = secured.manage(
        "token", "create", "-n", "ci-reader", "-r", "dockyard", "--scope-map", "reader"
    )
    password = printed(output, "password1")
    token = token_for(
        secured,
        "ci-reader",
        password,
        "repository:svc/api:pull,push",
        "repository:other:pull",
        "registry:catalog:*",
    )
    claims = jwt.decode(token, options={"verify_signature": False})
    access = {(a["type"], a["name"]): a["actions"] for a in claims["access"]}
    assert access[("repository", "svc/api")] == ["pull"]
    assert access[("repository", "other")] == []
    assert access[("registry", "catalog")] == []
    assert claims["aud"] == secured.host and claims["sub"] == "token:ci-reader"


def test_post_password_and_refresh_grants(secured):
    seed(secured, "grants/app")
    form = {
        "grant_type": "password",
        "service": secured.host,
        "username": "dockyard",
        "password": ADMIN_PASSWORD,
        "scope": "repository:grants/app:pull",
        "access_type": "offline",
    }
    first = httpx.post(f"{secured.url}/oauth2/token", data=form)
    assert first.status_code == 200, first.text
    refresh = first.json()["refresh_token"]
    payload = refresh.split(".")[1]
    assert "-" not in payload and "_" not in payload  # the Azure SDK decodes plain base64
    second = httpx.post(
        f"{secured.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": secured.host,
            "refresh_token": refresh,
            "scope": "repository:grants/app:pull",
        },
    )
    assert second.status_code == 200, second.text
    pulled = httpx.get(
        f"{secured.url}/v2/grants/app/manifests/v1",
        headers={"Authorization": f"Bearer {second.json()['access_token']}"},
    )
    assert pulled.status_code == 200


def test_null_guid_login_with_a_refresh_token(secured, skopeo):
    seed(secured, "guid/app")
    refresh = httpx.get(
        f"{secured.url}/oauth2/token",
        params={"service": secured.host, "offline_token": "true"},
        headers=basic("dockyard", ADMIN_PASSWORD),
    ).json()["refresh_token"]
    result = skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        f"{NULL_GUID}:{refresh}",
        f"docker://{secured.host}/guid/app:v1",
    )
    assert '"Digest"' in result.stdout


def test_identity_client_credentials_exchange_and_roles(secured):
    seed(secured, "team/app")
    output = secured.admin("identity", "create", "builder")
    client_id, secret = printed(output, "username"), printed(output, "secret")
    secured.manage(
        "role",
        "assignment",
        "create",
        "--assignee",
        "builder",
        "--role",
        "AcrPull",
        "-r",
        "dockyard",
        "--repository",
        "team/*",
    )
    identity = httpx.post(
        f"{secured.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "https://containerregistry.azure.net/.default",
        },
    )
    assert identity.status_code == 200, identity.text
    exchanged = httpx.post(
        f"{secured.url}/oauth2/exchange",
        data={
            "grant_type": "access_token",
            "service": secured.host,
            "access_token": identity.json()["access_token"],
        },
    )
    assert exchanged.status_code == 200, exchanged.text
    access = httpx.post(
        f"{secured.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": secured.host,
            "refresh_token": exchanged.json()["refresh_token"],
            "scope": "repository:team/app:pull,push,delete",
        },
    ).json()["access_token"]
    granted = jwt.decode(access, options={"verify_signature": False})["access"][0]["actions"]
    assert granted == ["pull"]  # what AcrPull has of what was asked: no push, no delete
    bearer = {"Authorization": f"Bearer {access}"}
    assert httpx.get(f"{secured.url}/v2/team/app/manifests/v1", headers=bearer).status_code == 200
    refused = httpx.delete(f"{secured.url}/v2/team/app/manifests/v1", headers=bearer)
    assert refused.status_code == 401
    assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
    # A disabled identity loses access, even with a refresh token in hand.
    secured.admin("identity", "disable", "builder")
    again = httpx.post(
        f"{secured.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": secured.host,
            "refresh_token": exchanged.json()["refresh_token"],
            "scope": "repository:team/app:pull",
        },
    )
    assert again.status_code == 401


def test_disabled_token_and_expired_password(secured):
    secured.manage(
        "scope-map", "create", "-n", "pull-all", "-r", "dockyard", "--repository", "* content/read"
    )
    password = printed(
        secured.manage(
            "token", "create", "-n", "short", "-r", "dockyard", "--scope-map", "pull-all"
        ),
        "password1",
    )
    seed(secured, "tokens/app")
    assert (
        httpx.get(
            f"{secured.url}/v2/tokens/app/tags/list", headers=basic("short", password)
        ).status_code
        == 200
    )
    secured.manage("token", "update", "-n", "short", "-r", "dockyard", "--status", "disabled")
    assert (
        httpx.get(
            f"{secured.url}/oauth2/token",
            params={"service": secured.host},
            headers=basic("short", password),
        ).status_code
        == 401
    )
    secured.manage("token", "update", "-n", "short", "-r", "dockyard", "--status", "enabled")
    expired = printed(
        secured.manage(
            "token",
            "credential",
            "generate",
            "-n",
            "short",
            "-r",
            "dockyard",
            "--password2",
            "--expiration",
            "2020-01-01T00:00:00",
        ),
        "password2",
    )
    assert (
        httpx.get(
            f"{secured.url}/oauth2/token",
            params={"service": secured.host},
            headers=basic("short", expired),
        ).status_code
        == 401
    )


# -- tokens that must be refused ---------------------------------------------------------------


def test_tampered_wrong_audience_expired_and_revoked_tokens(secured):
    seed(secured, "bad/app")
    good = token_for(secured, "dockyard", ADMIN_PASSWORD, "repository:bad/app:pull")
    url = f"{secured.url}/v2/bad/app/manifests/v1"
    assert httpx.get(url, headers={"Authorization": f"Bearer {good}"}).status_code == 200

    header, _payload, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    claims["access"][0]["name"] = "bad/other"
    forged_payload = jwt.encode(claims, "x", algorithm="HS256").split(".")[1]
    for forged in (f"{header}.{forged_payload}.{signature}", good[:-4] + "AAAA"):
        response = httpx.get(url, headers={"Authorization": f"Bearer {forged}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]

    other = httpx.get(
        f"{secured.url}/oauth2/token",
        params={"service": "elsewhere.example", "scope": "repository:bad/app:pull"},
        headers={**basic("dockyard", ADMIN_PASSWORD), "Host": "elsewhere.example"},
    )
    assert other.status_code == 200  # the default registry answers; audience is its own
    unsigned = jwt.encode({**claims, "aud": "another-registry"}, "k", algorithm="HS256")
    assert httpx.get(url, headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401

    refresh = httpx.get(
        f"{secured.url}/oauth2/token",
        params={"service": secured.host, "offline_token": "true"},
        headers=basic("dockyard", ADMIN_PASSWORD),
    ).json()["refresh_token"]
    secured.admin("refresh-token", "revoke", "--subject", "admin")
    revoked = httpx.post(
        f"{secured.url}/oauth2/token",
        data={"grant_type": "refresh_token", "service": secured.host, "refresh_token": refresh},
    )
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["errors"][0]["message"]


def test_tokens_signed_by_this_registry_but_expired_or_for_another_audience(secured):
    """Sign with the server's own key (read from its data directory, as a second node
    would), so the refusal is for the lifetime or the audience, not the signature."""
    from datetime import UTC, datetime, timedelta

    from dockyard.auth.tokens import Lifetimes, TokenSigner
    from dockyard.services import build_services
    from dockyard.settings import load_settings

    seed(secured, "lifetime/app")
    access = [{"type": "repository", "name": "lifetime/app", "actions": ["pull"]}]
    services = build_services(load_settings(None, data_dir=secured.data_dir))
    try:
        past = TokenSigner(
            services.keys,
            lambda: datetime.now(UTC) - timedelta(hours=2),
            Lifetimes(access=timedelta(minutes=5)),
        )
        expired, _ = past.access_token(secured.host, "admin", access)
        elsewhere, _ = services.tokens.access_token("other.registry.example", "admin", access)
        fresh, _ = services.tokens.access_token(secured.host, "admin", access)
    finally:
        services.close()
    url = f"{secured.url}/v2/lifetime/app/manifests/v1"
    assert httpx.get(url, headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    for token, reason in ((expired, "expired"), (elsewhere, "another registry")):
        response = httpx.get(url, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
        assert reason in response.json()["errors"][0]["message"]


# -- anonymous pull, lockout, audit --------------------------------------------------------------


def test_anonymous_pull(secured, skopeo):
    seed(secured, "public/app")
    url = f"docker://{secured.host}/public/app:v1"
    assert skopeo("inspect", "--tls-verify=false", url, check=False).returncode != 0
    secured.manage("registry", "update", "-n", "dockyard", "--anonymous-pull-enabled", "true")
    try:
        assert '"Digest"' in skopeo("inspect", "--tls-verify=false", url).stdout
        push = httpx.post(f"{secured.url}/v2/public/app/blobs/uploads/")
        assert push.status_code == 401
    finally:
        secured.manage("registry", "update", "-n", "dockyard", "--anonymous-pull-enabled", "false")


def test_failed_logins_are_throttled_and_recorded(secured):
    local = httpx.HTTPTransport(local_address="127.0.0.9")
    with httpx.Client(transport=local) as client:
        statuses = [
            client.get(
                f"{secured.url}/oauth2/token",
                params={"service": secured.host},
                headers=basic("dockyard", f"wrong{i}"),
            ).status_code
            for i in range(4)
        ]
        assert statuses[:3] == [401, 401, 401]
        assert statuses[3] == 429
        locked = client.get(
            f"{secured.url}/oauth2/token",
            params={"service": secured.host},
            headers=basic("dockyard", ADMIN_PASSWORD),
        )
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
    # Other addresses are not locked out.
    assert (
        httpx.get(
            f"{secured.url}/oauth2/token",
            params={"service": secured.host},
            headers=basic("dockyard", ADMIN_PASSWORD),
        ).status_code
        == 200
    )
    log = Path(secured.log_path).read_text()
    assert ADMIN_PASSWORD not in log and "wrong0" not in log


def test_dockyard_login_stores_a_refresh_token_for_docker_and_skopeo(secured, skopeo, tmp_path):
    seed(secured, "login/app")
    env = {
        "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
        "DOCKER_CONFIG": str(tmp_path / "docker"),
    }
    result = run_cli(
        "login", secured.host, "-u", "dockyard", "-p", ADMIN_PASSWORD, "--insecure", env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    docker = (tmp_path / "docker" / "config.json").read_text()
    assert secured.host in docker and ADMIN_PASSWORD not in docker
    # skopeo reads the same auth.json (the fixture points REGISTRY_AUTH_FILE there).
    assert (
        '"Digest"'
        in skopeo("inspect", "--tls-verify=false", f"docker://{secured.host}/login/app:v1").stdout
    )
    refused = run_cli("login", secured.host, "-u", "dockyard", "-p", "wrong", "--insecure", env=env)
    assert refused.returncode == 1 and "login refused (401)" in refused.stdout


def test_oras_with_a_token_login(secured, tmp_path):
    from test_oras import Oras

    secured.manage(
        "scope-map",
        "create",
        "-n",
        "artifacts",
        "-r",
        "dockyard",
        "--repository",
        "artifacts/* content/read content/write",
    )
    password = printed(
        secured.manage(
            "token", "create", "-n", "oras-bot", "-r", "dockyard", "--scope-map", "artifacts"
        ),
        "password1",
    )
    # oras-py's token backend keeps one access token and sends it again after a 401, so
    # once its first request (a blob HEAD) bought a pull token it cannot push to a
    # registry whose tokens carry only what was asked (ACR's, Distribution's, this one's).
    # Its basic backend answers every challenge with the credentials, as ACR accepts.
    client = Oras(hostname=secured.host, insecure=True, auth_backend="basic")
    client.auth.set_basic_auth("oras-bot", password)  # what `login` does, minus docker config
    note = tmp_path / "note.txt"
    note.write_text("signed off\n")
    pushed = client.push(
        f"{secured.host}/artifacts/note:v1",
        files=[str(note)],
        disable_path_validation=True,
        quiet=True,
    )
    assert pushed.status_code == 201, pushed.text
    pulled = client.pull(target=f"{secured.host}/artifacts/note:v1", outdir=str(tmp_path / "out"))
    assert Path(pulled[0]).read_text() == "signed off\n"
    with pytest.raises(Exception, match=r"(?i)denied|unauthori|403"):
        client.push(
            f"{secured.host}/elsewhere/note:v1",
            files=[str(note)],
            disable_path_validation=True,
            quiet=True,
        )
