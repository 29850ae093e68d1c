"""`distribution.ChunkBudget`: blob bodies read large chunks alone and share the budget
when many are sent at once, and every body still arrives whole, from files and from S3."""

from __future__ import annotations

import asyncio
import hashlib
import os

import httpx
from seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

from dockyard.api import distribution
from dockyard.api.distribution import ChunkBudget
from dockyard.app import create_app

KiB, MiB = 1024, 1024 * 1024


def test_chunks_shrink_with_the_number_of_bodies_and_stay_within_bounds() -> None:
    budget = ChunkBudget(4 * MiB, 256 * KiB, MiB)
    assert budget.size() == MiB
    sizes = []
    with budget.sender():
        sizes.append(budget.size())
        with budget.sender(), budget.sender(), budget.sender(), budget.sender():
            sizes.append(budget.size())
            with budget.sender(), budget.sender(), budget.sender():
                sizes.append(budget.size())
                for _ in range(60):
                    budget.sending += 1
                sizes.append(budget.size())
                budget.sending -= 60
    assert sizes == [MiB, 4 * MiB // 5, 512 * KiB, 256 * KiB]
    assert budget.sending == 0


def _bodies_sent_at_once_arrive_whole(services, budget: ChunkBudget) -> None:
    """Six whole GETs and one range across chunk boundaries, at once: each body arrives
    whole, and the budget is free again afterwards."""
    app = create_app(services, background=False)
    data = os.urandom(5 * MiB + 12_345)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            pushed = await http.post(f"/v2/chunks/app/blobs/uploads/?digest={digest}", content=data)
            assert pushed.status_code == 201
            url = f"/v2/chunks/app/blobs/{digest}"
            whole = [http.get(url) for _ in range(6)]
            part = http.get(url, headers={"Range": f"bytes={MiB - 1}-{4 * MiB}"})
            *bodies, ranged = await asyncio.gather(*whole, part)
            assert all(body.content == data for body in bodies)
            assert ranged.status_code == 206
            assert ranged.content == data[MiB - 1 : 4 * MiB + 1]
        assert budget.sending == 0

    asyncio.run(session())


def test_bodies_sent_at_once_arrive_whole(make_services) -> None:
    services = make_services(auth={"enabled": False})
    _bodies_sent_at_once_arrive_whole(services, distribution._CHUNKS)


def test_bodies_from_s3_sent_at_once_arrive_whole(make_services, seaweedfs) -> None:
    """From S3 the chunks come from a budget of their own, unbuffered from the S3 body."""
    storage = {
        "kind": "s3",
        "endpoint": seaweedfs.endpoint,
        "bucket": seaweedfs.create_bucket("chunks"),
        "region": REGION,
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
        "path_style": True,
    }
    services = make_services(auth={"enabled": False}, storage=storage)
    _bodies_sent_at_once_arrive_whole(services, distribution._REMOTE_CHUNKS)
