"""`app.ManifestReads`: manifest GETs and HEADs skip the router, and are answered as the
router and the exception middleware would answer them."""

from __future__ import annotations

import asyncio
import hashlib

import httpx
import pytest
from images import descriptor, json_bytes
from psycopg import pq

from dockyard.api import distribution
from dockyard.app import create_app
from dockyard.core.manifest_formats import OCI_MANIFEST
from dockyard.metadata import migrate
from dockyard.metadata.engine import make_engine
from dockyard.mirroring.imports import Reader

GETS = 20


def test_the_manifest_route_is_the_routers_first(make_services) -> None:
    app = create_app(make_services(auth={"enabled": False}), background=False)
    assert app.routes[0] is distribution.MANIFEST_ROUTE


def test_refusals_are_answered_as_the_exception_middleware_would(make_services) -> None:
    app = create_app(make_services(admin_password="secret-pass"), background=False)

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            get = await http.get("/v2/app/manifests/v1")
            assert get.status_code == 401
            assert get.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert 'scope="repository:app:pull"' in get.headers["www-authenticate"]
            head = await http.head("/v2/app/manifests/v1")
            assert (head.status_code, head.content) == (401, b"")
            assert "www-authenticate" in head.headers
            logged_in = ("dockyard", "secret-pass")
            missing = await http.get("/v2/app/manifests/v1", auth=logged_in)
            assert missing.status_code == 404
            assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
            bad = await http.get("/v2/BAD/manifests/v1", auth=logged_in)
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["code"] == "NAME_INVALID"

    asyncio.run(session())


def test_a_reference_neither_tag_nor_digest_is_an_unknown_manifest_but_a_bad_push(
    make_services,
) -> None:
    """No manifest can be stored under it, so a pull finds none (404, as Distribution
    answers), even in a repository a cache rule covers (no upstream is asked); a push
    under it is still refused as invalid."""
    services = make_services(auth={"enabled": False})
    app = create_app(services, background=False)
    registry = services.registries.for_host("localhost:5000")
    # Nothing listens on port 9: asking the upstream would answer UNAVAILABLE.
    services.cache_rules.create_rule(
        registry, "mirror", "127.0.0.1:9/library/*", "mirror/*", Reader(None)
    )
    references = ["-bad-", "v1..~", "sha256:xyz", "sha384:" + "a" * 96, "a" * 129]

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            for repo in ("app", "mirror/app"):
                for reference in references:
                    url = f"/v2/{repo}/manifests/{reference}"
                    get = await http.get(url)
                    assert get.status_code == 404, (url, get.text)
                    assert get.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
                    head = await http.head(url)
                    assert (head.status_code, head.content) == (404, b"")
            put = await http.put(
                "/v2/app/manifests/-bad-",
                content=b"{}",
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert put.status_code == 400
            assert put.json()["errors"][0]["code"] == "MANIFEST_INVALID"

    asyncio.run(session())


def _statements(trace: str) -> int:
    """Statements a libpq trace shows the client sending: an `Execute` (of psycopg's
    extended protocol, prepared or not) or a `Query` (the simple protocol's) each."""
    sent = (line.split("\t") for line in trace.splitlines())
    return sum(1 for fields in sent if fields[0] == "F" and fields[2] in ("Execute", "Query"))


@pytest.mark.parametrize("quarantine", ["off", "passed", "held"])
def test_a_warm_manifest_get_on_postgresql_sends_one_statement(
    make_services, postgres, tmp_path, quarantine: str
) -> None:
    """The read cache's check (both change counters, one read) and nothing else: the
    registry map, the network rules, the Basic login and the manifest are all kept, and
    the pull's audit row waits for the flush. Counted on the wire of the thread's
    connection (libpq's trace), where the check runs straight on the driver. With the
    quarantine policy on, its policy and the manifest's state are kept too, and so are
    the grants that let the admin user pull a held manifest."""
    url = postgres.create_database("warmget")
    migrate.upgrade(make_engine(url))
    services = make_services(metadata={"url": url}, admin_password="secret-pass")
    app = create_app(services, background=False)
    admin = ("dockyard", "secret-pass")
    config = b"{}"
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [],
        }
    )
    trace = tmp_path / "libpq.trace"

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://localhost:5000", auth=admin
        ) as http:
            upload = f"/v2/app/blobs/uploads/?digest={config_digest}"
            assert (await http.post(upload, content=config)).status_code == 201
            media = {"Content-Type": OCI_MANIFEST}
            put = await http.put("/v2/app/manifests/v1", content=manifest, headers=media)
            assert put.status_code == 201
            if quarantine != "off":
                registry = services.registries.for_host("localhost:5000")
                services.quarantine.set_enabled(registry, True)
                if quarantine == "passed":
                    digest = put.headers["Docker-Content-Digest"]
                    services.quarantine.set_state(registry, "app", digest, "Passed")
            assert (await http.get("/v2/app/manifests/v1")).status_code == 200  # warms
            with services.meta.connection() as conn, trace.open("w") as out:
                pgconn = conn.connection.dbapi_connection.pgconn
                pgconn.trace(out.fileno())
                pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
                try:
                    for _ in range(GETS):
                        assert (await http.get("/v2/app/manifests/v1")).status_code == 200
                finally:
                    pgconn.untrace()

    asyncio.run(session())
    assert _statements(trace.read_text()) <= GETS
