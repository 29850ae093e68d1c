"""Import and the pull-through cache reading a registry of this server, in process: the
source is read only by someone who may pull from it (and, for importImage, from where
its network rules allow), however the source registry is spelled; a malformed
`registryUri` is ARM's 400 before anything runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import images
import pytest

from dockyard.app import create_app
from dockyard.management.registry_resources import RegistryChange, parse_network_rule_set
from dockyard.metadata.records import RegistryRecord
from dockyard.services import Services

LOGIN_SERVER = "127.0.0.1:5000"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/dockyard"
REGISTRIES = f"{GROUP}/providers/Microsoft.ContainerRegistry/registries"
VERSION = {"api-version": "2023-07-01"}
CLIENT = ("10.1.2.3", 40000)


@dataclass
class Server:
    services: Services
    private: RegistryRecord  # holds team/app:v1, readable by its own people only
    other: RegistryRecord  # where "contributor" and "reader" may write
    tokens: dict[str, str]
    identities: dict[str, str]
    assignments: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def server(make_services) -> Server:
    """`dockyard` (the default registry, 127.0.0.1:5000) holds a private image; identities
    that are Contributors of `otherregistry`: `contributor` with no right on `dockyard`,
    `reader` who may also pull from it."""
    services = make_services(
        auth={"enabled": True},
        registry={"default_name": "dockyard", "login_server": LOGIN_SERVER},
    )
    private = services.registries.for_host(LOGIN_SERVER)
    image = images.busybox_image()
    for digest, data in image.blobs.items():
        asyncio.run(services.uploads.upload_whole(private, "team/app", digest, _body(data)))
    services.manifests.put(private, "team/app", "v1", image.manifest, image.media_type)
    other = services.registry_resources.create(
        services.registry_resources.placement_of(private),
        "otherregistry",
        "westeurope",
        RegistryChange(sku="Premium", anonymous_pull_enabled=True),
    ).record
    admin = services.administration
    tokens, identities, assignments = {}, {}, {}
    for name in ("contributor", "reader"):
        identity, _ = admin.create_identity(name)
        identities[name] = identity.id
        admin.assign_role(other, identity.id, "Contributor")
        if name == "reader":
            assignments[name] = admin.assign_role(private, identity.id, "AcrPull")
        tokens[name], _ = services.tokens.identity_token(
            identity.id, "https://management.azure.com"
        )
    return Server(services, private, other, tokens, identities, assignments)


async def _import(http: httpx.AsyncClient, headers: dict[str, str], source: dict) -> httpx.Response:
    """importImage into otherregistry's copy:v1, polled to its end."""
    body = {"source": source, "targetTags": ["copy:v1"], "mode": "Force"}
    answer = await http.post(
        f"{REGISTRIES}/otherregistry/importImage", params=VERSION, headers=headers, json=body
    )
    while answer.status_code == 202:
        await asyncio.sleep(0.05)
        answer = await http.get(answer.headers["Location"], headers=headers)
    return answer


def _session(server: Server, calls) -> Any:  # type: ignore[no-untyped-def]
    app = create_app(server.services, background=False)

    async def run() -> Any:
        transport = httpx.ASGITransport(app=app, client=CLIENT)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:5000") as http:
            return await calls(http)

    return asyncio.run(run())


def _copied(server: Server) -> bool:
    return server.services.meta.repository_exists(server.other.id, "copy")


SPELLINGS = [
    {"registryUri": LOGIN_SERVER, "sourceImage": "team/app:v1"},
    {"registryUri": f"{LOGIN_SERVER}/team", "sourceImage": "app:v1"},
    {"registryUri": f"http://{LOGIN_SERVER}", "sourceImage": "team/app:v1"},
    {"registryUri": f"HTTPS://{LOGIN_SERVER.upper()}/", "sourceImage": "team/app:v1"},
    {"registryUri": "127.0.0.1.:5000", "sourceImage": "team/app:v1"},
    # Other names of this server's listen address, which HTTP would reach it by.
    {"registryUri": "localhost:5000", "sourceImage": "team/app:v1"},
    {"registryUri": "[::1]:5000", "sourceImage": "team/app:v1"},
    {"registryUri": "127.0.0.2:5000", "sourceImage": "team/app:v1"},
    {"registryUri": "0.0.0.0:5000", "sourceImage": "team/app:v1"},
    {"resourceId": f"{REGISTRIES}/dockyard", "sourceImage": "team/app:v1"},
]


@pytest.mark.parametrize("source", SPELLINGS)
def test_import_from_this_server_needs_a_pull_right_on_the_source(server, source) -> None:
    async def calls(http: httpx.AsyncClient) -> httpx.Response:
        return await _import(http, server.headers("contributor"), source)

    refused = _session(server, calls)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "AuthorizationFailed"
    assert not _copied(server)


@pytest.mark.parametrize("source", SPELLINGS)
def test_a_reader_of_the_source_imports_from_it(server, source) -> None:
    async def calls(http: httpx.AsyncClient) -> httpx.Response:
        return await _import(http, server.headers("reader"), source)

    done = _session(server, calls)
    assert done.status_code == 200, done.text
    assert _copied(server)


def test_import_from_this_server_honours_the_source_s_network_rules(server) -> None:
    resources = server.services.registry_resources
    resources.update(
        resources.placement_of(server.private),
        server.private.name,
        RegistryChange(network_rule_set=parse_network_rule_set("Deny", ["192.0.2.0/24"])),
    )

    async def calls(http: httpx.AsyncClient) -> httpx.Response:
        source = {"registryUri": f"http://{LOGIN_SERVER}/team", "sourceImage": "app:v1"}
        return await _import(http, server.headers("reader"), source)

    refused = _session(server, calls)
    assert refused.status_code == 403, refused.text
    assert "10.1.2.3" in refused.json()["error"]["message"]
    assert not _copied(server)


@pytest.mark.parametrize(
    "uri",
    [
        f" {LOGIN_SERVER}",
        f"{LOGIN_SERVER}.",
        f"{LOGIN_SERVER}\n",
        f"{LOGIN_SERVER}:1",
        f"{LOGIN_SERVER}0000",
        "ftp://example.com",
        "user@example.com",
        "exa mple.com",
        "",
    ],
)
def test_a_malformed_registry_uri_is_a_bad_request_up_front(server, uri) -> None:
    async def calls(http: httpx.AsyncClient) -> httpx.Response:
        return await _import(
            http, server.headers("reader"), {"registryUri": uri, "sourceImage": "team/app:v1"}
        )

    refused = _session(server, calls)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "InvalidParameter"
    assert "registryUri" in error["message"] and "Traceback" not in error["message"]


def _put_rule(
    http: httpx.AsyncClient, headers: dict[str, str], name: str, source: str, target: str
):  # type: ignore[no-untyped-def]
    body = {"properties": {"sourceRepository": source, "targetRepository": target}}
    return http.put(
        f"{REGISTRIES}/otherregistry/cacheRules/{name}", params=VERSION, headers=headers, json=body
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (f"{LOGIN_SERVER}/*", "mirror/*"),
        (f" {LOGIN_SERVER}/team/*", "mirror/*"),
        ("127.0.0.1.:5000/team/app", "cached/app"),
        (f"{LOGIN_SERVER.upper()}/team/app", "cached/app"),
        ("localhost:5000/team/*", "mirror/*"),
    ],
)
def test_a_cache_rule_may_not_read_this_server_for_who_may_not(server, source, target) -> None:
    async def calls(http: httpx.AsyncClient) -> httpx.Response:
        return await _put_rule(http, server.headers("contributor"), "mirror", source, target)

    refused = _session(server, calls)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] and "pull" in error["message"]
    assert server.services.cache_rules.rules(server.other) == []


def test_a_cache_rule_reads_this_server_only_while_its_author_may(server) -> None:
    """Made by someone who may pull the source: it serves; once the author loses the
    right, a pull it would fetch is refused (what it cached is served as any image)."""
    image = images.busybox_image("arm64")
    private = server.private
    services = server.services
    for digest, data in image.blobs.items():
        asyncio.run(services.uploads.upload_whole(private, "team/app", digest, _body(data)))
    services.manifests.put(private, "team/app", "v2", image.manifest, image.media_type)
    # A pull right on every repository of the registry is needed for a wildcard rule.
    narrow = services.administration.assign_role(
        private, server.identities["contributor"], "AcrPull", "team/app"
    )

    async def calls(http: httpx.AsyncClient) -> list[httpx.Response]:
        wild = await _put_rule(
            http, server.headers("contributor"), "mirror", f"{LOGIN_SERVER}/*", "mirror/*"
        )
        services.administration.remove_role_assignment(narrow)
        made = await _put_rule(
            http, server.headers("reader"), "mirror", f"{LOGIN_SERVER}/*", "mirror/*"
        )
        host = {"Host": server.other.login_server}
        first = await http.get("/v2/mirror/team/app/manifests/v1", headers=host)
        services.administration.remove_role_assignment(server.assignments["reader"])
        cached = await http.get("/v2/mirror/team/app/manifests/v1", headers=host)
        refused = await http.get("/v2/mirror/team/app/manifests/v2", headers=host)
        return [wild, made, first, cached, refused]

    wild, made, first, cached, refused = _session(server, calls)
    assert wild.status_code == 400, wild.text
    assert made.status_code == 201, made.text
    assert first.status_code == 200, first.text
    assert cached.status_code == 200
    assert refused.status_code == 403, refused.text
    assert not services.meta.manifest_by_tag(server.other.id, "mirror/team/app", "v2")


def test_an_import_that_fails_unexpectedly_tells_no_exception_text(server, monkeypatch) -> None:
    """A bug's exception text (paths, addresses, values) stays in the server's log."""

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail /srv/secret")

    monkeypatch.setattr(server.services.importer, "run", broken)

    async def calls(http: httpx.AsyncClient) -> httpx.Response:
        source = {"registryUri": "registry.example.com", "sourceImage": "app:v1"}
        return await _import(http, server.headers("reader"), source)

    failed = _session(server, calls)
    assert failed.status_code == 500
    error = failed.json()["error"]
    assert error["code"] == "InternalServerError"
    assert "/srv/secret" not in error["message"] and "RuntimeError" not in error["message"]


def test_the_import_operation_reports_what_it_did(server) -> None:
    """The Location answers 202 with the progress (bytes to copy and copied) while the
    import runs, and 200 with what it did once done (Dockyard's extension of ARM's
    empty answer, which `dockyard import` shows)."""
    image = images.busybox_image()

    async def calls(http: httpx.AsyncClient) -> list[httpx.Response]:
        body = {
            "source": {"registryUri": LOGIN_SERVER, "sourceImage": "team/app:v1"},
            "targetTags": ["copy:v1", "again:v1"],
        }
        url = f"{REGISTRIES}/otherregistry/importImage"
        answers = [
            await http.post(url, params=VERSION, headers=server.headers("reader"), json=body)
        ]
        while answers[-1].status_code == 202:
            await asyncio.sleep(0.05)
            answers.append(
                await http.get(answers[-1].headers["Location"], headers=server.headers("reader"))
            )
        return answers

    *running, done = _session(server, calls)
    for answer in running[1:]:
        assert answer.json()["status"] == "InProgress"
    assert done.status_code == 200, done.text
    assert done.json() == {
        "status": "Succeeded",
        "properties": {
            "digest": image.digest,
            "targets": ["copy:v1", "again:v1"],
            "manifests": 1,
            "blobsCopied": len(image.blobs),
            "bytesCopied": sum(len(blob) for blob in image.blobs.values()),
            "blobsLinked": len(image.blobs),  # the second target's: no byte moved
        },
    }
