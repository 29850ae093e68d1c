"""What a trust policy costs a warm manifest GET: on PostgreSQL, the read cache's one
check per request and nothing more (the verdict is a dict look-up; the policy is read
again at most every `KEEP_SECONDS`), counted on the wire as
tests/api/test_manifest_reads.py counts the GET without it."""

from __future__ import annotations

import asyncio
import time

import envelopes
import httpx
from images import OCI_CONFIG, OCI_MANIFEST, descriptor, json_bytes
from psycopg import pq

from dockyard.app import create_app
from dockyard.metadata import migrate
from dockyard.metadata.engine import make_engine
from dockyard.signing.trust import KEEP_SECONDS

GETS = 20


def _statements(trace: str) -> int:
    """Statements a libpq trace shows the client sending (as test_manifest_reads.py)."""
    sent = (line.split("\t") for line in trace.splitlines())
    return sum(1 for fields in sent if fields[0] == "F" and fields[2] in ("Execute", "Query"))


def test_a_warm_manifest_get_under_a_policy_sends_one_statement(make_services, postgres, tmp_path):
    url = postgres.create_database("trustget")
    migrate.upgrade(make_engine(url))
    services = make_services(metadata={"url": url}, auth={"enabled": False})
    app = create_app(services, background=False)
    key, public = envelopes.cosign_key()
    config = b"{}"
    manifest = json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
        }
    )
    digest = envelopes.digest_of(manifest)
    payload = envelopes.cosign_payload("localhost:5000/app", digest)
    signature = envelopes.cosign_manifest(config, [envelopes.cosign_layer(key, payload)])
    record = services.registries.for_host("")
    services.trust.add_store(record, "cosign", "release", public)
    document = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "release",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["cosign:release"],
            }
        ],
    }
    services.trust.set_policy(record, document, True)
    trace = tmp_path / "libpq.trace"

    async def session() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            for blob in (config, payload):
                upload = f"/v2/app/blobs/uploads/?digest={envelopes.digest_of(blob)}"
                assert (await http.post(upload, content=blob)).status_code == 201
            media = {"Content-Type": OCI_MANIFEST}
            put = await http.put("/v2/app/manifests/v1", content=manifest, headers=media)
            assert put.status_code == 201
            assert (await http.get("/v2/app/manifests/v1")).status_code == 403
            tag = digest.replace(":", "-") + ".sig"
            put = await http.put(f"/v2/app/manifests/{tag}", content=signature, headers=media)
            assert put.status_code == 201
            assert (await http.get("/v2/app/manifests/v1")).status_code == 200  # warms
            started = time.monotonic()
            with services.meta.connection() as conn, trace.open("w") as out:
                pgconn = conn.connection.dbapi_connection.pgconn
                pgconn.trace(out.fileno())
                pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
                try:
                    for _ in range(GETS):
                        assert (await http.get("/v2/app/manifests/v1")).status_code == 200
                finally:
                    pgconn.untrace()
            return time.monotonic() - started

    seconds = asyncio.run(session())
    rereads = int(seconds // KEEP_SECONDS) + 1
    assert _statements(trace.read_text()) <= GETS + 2 * rereads
