"""A blob larger than one chunk goes to a peer in parts, into an upload session there: a
transfer broken off is continued by the retry from the bytes the peer holds, never sent
again whole; the peer verifies the whole against the digest. Sender and peer in process:
the peer is the app (Starlette's TestClient is the sender's `httpx.Client`), the sender's
bytes a filesystem store of its own."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from starlette.testclient import TestClient
from test_apply import BASE, PEER, services

from dockyard.app import create_app
from dockyard.replication import sender
from dockyard.replication.sender import _Delivery, _Sessions
from dockyard.services import Services
from dockyard.storage.filesystem import FilesystemBlobStore

__all__ = ["services"]  # the fixture, shared with test_apply

SIZE = sender.PART * 2 + 12345


class _Breaking:
    """A reader that fails after `after` bytes (a connection lost mid-way), counting what
    was read."""

    def __init__(self, inner: BinaryIO, after: int | None) -> None:
        self._inner, self._after, self.read_bytes = inner, after, 0

    def read(self, n: int = -1) -> bytes:
        if self._after is not None and self.read_bytes >= self._after:
            raise OSError("the connection broke")
        data = self._inner.read(n)
        self.read_bytes += len(data)
        return data

    def seek(self, offset: int) -> int:
        return self._inner.seek(offset)

    def __enter__(self) -> _Breaking:
        return self

    def __exit__(self, *exc: object) -> None:
        self._inner.close()


class _Source:
    """The sending region's store of one registry, whose next reader may break."""

    def __init__(self, store: FilesystemBlobStore) -> None:
        self.store, self.break_after, self.readers = store, None, []

    def for_registry(self, name: str) -> _Source:
        return self

    def stat(self, digest: str) -> int | None:
        return self.store.stat(digest)

    def open(self, digest: str) -> _Breaking:
        reader = _Breaking(self.store.open(digest), self.break_after)
        self.readers.append(reader)
        return reader


def test_a_broken_transfer_continues_where_it_stopped(services: Services, tmp_path: Path) -> None:
    data = os.urandom(SIZE)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store = FilesystemBlobStore(tmp_path / "sender")
    store.put_blob("u1", digest, data)
    source = _Source(store)
    registry = next(r for r in services.registries.all() if r.name == "dockyard")
    sessions = _Sessions({}, "westus", "dockyard")
    app = create_app(services, background=False)
    with TestClient(
        app, base_url=f"http://localhost:5000{BASE.rsplit('/registries', 1)[0]}"
    ) as http:
        http.headers.update(PEER)
        delivery = _Delivery(http, services.meta, source, registry, sessions)  # type: ignore[arg-type]

        source.break_after = sender.PART + sender.CHUNK  # the second part breaks off
        with pytest.raises((OSError, httpx.HTTPError)):
            delivery._blob("app", digest)
        assert sessions.get("app", digest) is not None
        assert http.head(f"http://localhost:5000/v2/app/blobs/{digest}").status_code == 404

        source.break_after = None
        delivery._blob("app", digest)
        # Only what the peer did not hold yet was read again: from the second part on.
        assert source.readers[-1].read_bytes == SIZE - sender.PART
        assert sessions.get("app", digest) is None
        got = http.get(f"http://localhost:5000/v2/app/blobs/{digest}")
        assert got.status_code == 200 and got.content == data


def test_a_part_must_start_where_the_session_ends(services: Services) -> None:
    app = create_app(services, background=False)
    with TestClient(app, base_url="http://localhost:5000") as http:
        started = http.post(f"{BASE}/uploads", params={"repository": "app"}, headers=PEER)
        assert started.status_code == 201, started.text
        upload = started.json()["upload"]
        where = f"{BASE}/uploads/{upload}"
        part = http.patch(
            where, params={"repository": "app", "offset": "0"}, content=b"abc", headers=PEER
        )
        assert part.json() == {"offset": 3}
        wrong = http.patch(
            where, params={"repository": "app", "offset": "1"}, content=b"def", headers=PEER
        )
        assert wrong.status_code == 416
        assert http.get(where, params={"repository": "app"}, headers=PEER).json() == {"offset": 3}
        bad = "sha256:" + hashlib.sha256(b"abcdef").hexdigest()
        refused = http.put(where, params={"repository": "app", "digest": bad}, headers=PEER)
        assert refused.status_code == 400
        assert http.get(where, params={"repository": "app"}).status_code == 401
