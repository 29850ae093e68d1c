"""`[audit] pulls` in process: on (the default), every manifest pull gives a Pull row; off,
successful pulls give none while refused ones still do."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx
import pytest

from dockyard.app import create_app
from dockyard.metadata.audit import AuditFilter

CONFIG, LAYER = b"{}", b"layer"


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _digest(CONFIG),
            "size": len(CONFIG),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _digest(LAYER),
                "size": len(LAYER),
            }
        ],
    }
).encode()


@pytest.mark.parametrize("pulls", [True, False])
def test_successful_pulls_are_recorded_only_when_asked(make_services, pulls: bool) -> None:
    services = make_services(auth={"enabled": False}, audit={"pulls": pulls})
    app = create_app(services, background=False)

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            for blob in (CONFIG, LAYER):
                url = f"/v2/app/blobs/uploads/?digest={_digest(blob)}"
                assert (await http.post(url, content=blob)).status_code == 201
            media = {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
            put = await http.put("/v2/app/manifests/v1", content=MANIFEST, headers=media)
            assert put.status_code == 201
            assert (await http.get("/v2/app/manifests/v1")).status_code == 200
            assert (await http.get("/v2/app/manifests/v2")).status_code == 404

    asyncio.run(session())
    services.audit.flush()
    registry = services.registries.for_host("")
    rows = services.audit.query(registry, "repository", AuditFilter(operation="Pull"))
    assert sorted(row["ResultType"] for row in rows) == (["200", "404"] if pulls else ["404"])
