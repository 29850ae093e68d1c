"""The S3 store hangs under a running app and comes back (the suite's SeaweedFS, paused
with SIGSTOP: its ports take connections and nothing answers). Meanwhile blob requests
answer 503 UNAVAILABLE in the OCI shape and `/readyz` says storage is down; an upload
whose publication failed keeps a status that its final PUT accepts, and that PUT,
sent again once the store is back, publishes it without a byte sent again."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from typing import Any

import httpx
from seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

from dockyard.app import create_app

MiB = 1 << 20
# botocore's event before the call that completes a blob in the store.
COMMIT = "before-call.s3.CompleteMultipartUpload"


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "UNAVAILABLE"
    assert "storage" in error["message"]


def test_a_hung_store_answers_503_and_a_failed_commit_resumes(seaweedfs, make_services) -> None:
    services = make_services(
        auth={"enabled": False},
        storage={
            "kind": "s3",
            "endpoint": seaweedfs.endpoint,
            "bucket": seaweedfs.create_bucket("outage"),
            "region": REGION,
            "access_key": ACCESS_KEY,
            "secret_key": SECRET_KEY,
            "path_style": True,
            "connect_timeout_seconds": 0.5,
            "read_timeout_seconds": 0.5,
            "max_attempts": 1,
        },
    )
    app = create_app(services, background=False)
    client = services.stores.for_registry("dockyard")._client  # type: ignore[attr-defined]
    small = b"a config blob"
    small_digest = "sha256:" + hashlib.sha256(small).hexdigest()
    large = os.urandom(9 * MiB)  # more than one part
    large_digest = "sha256:" + hashlib.sha256(large).hexdigest()

    def hang_at_commit(**_: Any) -> None:
        seaweedfs.pause()

    async def session(http: httpx.AsyncClient) -> None:
        pushed = await http.post(f"/v2/app/blobs/uploads/?digest={small_digest}", content=small)
        assert pushed.status_code == 201
        started = await http.post("/v2/app/blobs/uploads/")
        upload = started.headers["Location"]
        patched = await http.patch(upload, content=large)
        assert patched.headers["Range"] == f"0-{len(large) - 1}"

        client.meta.events.register(COMMIT, hang_at_commit, unique_id="hang")
        try:
            _unavailable(await http.put(f"{upload}?digest={large_digest}"))
        finally:
            client.meta.events.unregister(COMMIT, unique_id="hang")
        try:
            _unavailable(await http.get(f"/v2/app/blobs/{small_digest}"))
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["storage"].startswith("failed")
            status = await http.get(upload)
            assert status.status_code == 204
            assert status.headers["Range"] == f"0-{len(large) - 1}"
        finally:
            seaweedfs.resume()

        deadline = time.monotonic() + 30
        while (await http.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the store did not come back"
            await asyncio.sleep(0.2)
        status = await http.get(upload)
        assert status.headers["Range"] == f"0-{len(large) - 1}"
        finished = await http.put(f"{upload}?digest={large_digest}")
        assert finished.status_code == 201, finished.text
        pulled = await http.get(f"/v2/app/blobs/{large_digest}")
        assert hashlib.sha256(pulled.content).hexdigest() == large_digest.split(":")[1]
        assert (await http.get(f"/v2/app/blobs/{small_digest}")).content == small

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            await session(http)

    asyncio.run(main())
