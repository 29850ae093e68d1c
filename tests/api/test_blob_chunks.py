"""`distribution.ChunkBudget`: blob bodies read large chunks alone and share the budget
when many are sent at once, and every body still arrives whole, from files and from S3."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import time
from dataclasses import dataclass

import httpx
import pytest
from seaweedfs import ACCESS_KEY, REGION, SECRET_KEY

from dockyard.api import distribution
from dockyard.api.distribution import ChunkBudget
from dockyard.app import create_app
from dockyard.core.blobs import BlobLocation

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


def encrypted(make_services):
    """Services whose default registry (`localhost:5000`) stores its blobs encrypted: its
    pulls read ahead in a thread while a chunk is sent."""
    services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    services.registry_keys._provider.local.create_key("kek")  # type: ignore[attr-defined]
    services.registry_keys.enable(services.registries.for_host("localhost:5000"), "local:kek", None)
    assert services.stores.for_registry("dockyard").read_ahead
    return services


def test_bodies_read_ahead_from_an_encrypted_store_arrive_whole(make_services) -> None:
    """Six at once: the first two read ahead, the others (the cores busy) do not."""
    _bodies_sent_at_once_arrive_whole(encrypted(make_services), distribution._CHUNKS)


class SlowReader(io.BytesIO):
    """Reads that take a while (as decryption does), noting a close that comes while
    one is under way or before one begins."""

    reading = False
    closed_under_a_read = False

    def read(self, size: int | None = -1) -> bytes:
        self.closed_under_a_read |= self.closed
        self.reading = True
        time.sleep(0.2)
        self.reading = False
        return super().read(size)

    def close(self) -> None:
        self.closed_under_a_read |= self.reading
        super().close()


@dataclass
class SlowStore:
    reader: SlowReader
    remote = False
    read_ahead = True

    def open(self, digest: str) -> SlowReader:
        return self.reader


def test_a_client_gone_while_a_chunk_is_read_ahead_leaves_no_read_behind() -> None:
    """The send fails while the next chunk is read in a thread: the read ends before the
    blob's reader closes, and the send's error is the one raised."""
    reader = SlowReader(os.urandom(3 * MiB))
    location = BlobLocation("sha256:" + "0" * 64, 3 * MiB, SlowStore(reader))  # type: ignore[arg-type]
    bodies = []

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            bodies.append(message)
            raise OSError("client gone")

    with pytest.raises(OSError, match="client gone"):
        asyncio.run(distribution.BlobBody(location, {})({}, None, send))
    assert len(bodies) == 1 and not reader.closed_under_a_read and reader.closed
