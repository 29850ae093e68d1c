"""`dockyard.core.uploads`: sessions, chunks, verification and publishing, and expiry,
on a real SQLite `Metadata` and filesystem blob stores."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from dockyard.common.errors import (
    BlobUploadUnknown,
    DigestInvalid,
    Locked,
    NameInvalid,
    RangeInvalid,
    SizeInvalid,
)
from dockyard.core.uploads import Uploads, UploadState
from dockyard.metadata.attributes import AttributeWrites
from dockyard.metadata.records import LinkedBlob, RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from fake_clock import FakeClock

REPO = "library/app"
T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@pytest.fixture
def uploads(meta: Metadata, stores: BlobStores, clock: FakeClock) -> Uploads:
    return Uploads(meta, stores, clock)


@pytest.fixture
def store(stores: BlobStores, registry: RegistryRecord) -> BlobStore:
    return stores.for_registry(registry.name)


def read_blob(store: BlobStore, digest: str) -> bytes:
    with store.open(digest) as f:
        return f.read()


def assert_published(
    meta: Metadata, store: BlobStore, registry: RegistryRecord, digest: str, data: bytes
) -> None:
    assert store.stat(digest) == len(data)
    assert read_blob(store, digest) == data
    assert meta.blob_size(registry.id, digest) == len(data)
    assert meta.linked_blob(registry.id, REPO, digest) == LinkedBlob(len(data), readable=True)


def assert_not_published(
    meta: Metadata, store: BlobStore, registry: RegistryRecord, digest: str
) -> None:
    assert store.stat(digest) is None
    assert meta.blob_size(registry.id, digest) is None
    assert meta.linked_blob(registry.id, REPO, digest) is None


# -- sessions --------------------------------------------------------------------------------


def test_start_creates_an_empty_session(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    assert state.size == 0
    assert uploads.status(registry, REPO, state.id) == UploadState(state.id, 0)
    record = meta.upload(state.id)
    assert (record.registry_id, record.repository, record.size) == (registry.id, REPO, 0)
    # Its data starts with its first bytes: a blob sent whole with the final PUT never
    # makes any.
    assert store.upload_size(state.id) is None
    # Starting an upload does not create the repository: only a published blob does.
    assert not meta.repository_exists(registry.id, REPO)


def test_start_ids_are_unique(uploads: Uploads, registry: RegistryRecord) -> None:
    ids = {run(uploads.start(registry, REPO)).id for _ in range(5)}
    assert len(ids) == 5


def test_start_with_invalid_name_leaves_nothing(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    with pytest.raises(NameInvalid):
        run(uploads.start(registry, "Bad/Name"))
    assert meta.upload_ids() == set()
    assert list(store.upload_ids()) == []


def test_session_belongs_to_its_repository_and_registry(
    uploads: Uploads, meta: Metadata, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    with meta.transaction() as tx:
        other = tx.create_registry("fabrikam", "fabrikam.registry.example")
    with pytest.raises(BlobUploadUnknown):
        uploads.status(registry, "library/other", state.id)
    with pytest.raises(BlobUploadUnknown):
        uploads.status(other, REPO, state.id)
    with pytest.raises(BlobUploadUnknown) as caught:
        uploads.status(registry, REPO, "00000000-0000-0000-0000-000000000000")
    assert caught.value.detail == {"uuid": "00000000-0000-0000-0000-000000000000"}
    with pytest.raises(BlobUploadUnknown):
        run(uploads.append(registry, "library/other", state.id, body(b"x")))
    assert uploads.status(registry, REPO, state.id).size == 0


def test_cancel_forgets_the_session_and_its_data(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"partial")))
    run(uploads.cancel(registry, REPO, state.id))
    assert meta.upload(state.id) is None
    assert store.upload_size(state.id) is None
    with pytest.raises(BlobUploadUnknown):
        uploads.status(registry, REPO, state.id)
    with pytest.raises(BlobUploadUnknown):
        run(uploads.append(registry, REPO, state.id, body(b"more")))
    with pytest.raises(BlobUploadUnknown):
        run(uploads.cancel(registry, REPO, state.id))


# -- chunks ----------------------------------------------------------------------------------


def test_chunked_upload_without_start(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    data = b"hello, chunked world"
    state = run(uploads.start(registry, REPO))
    assert run(uploads.append(registry, REPO, state.id, body(data[:5]))) == UploadState(state.id, 5)
    assert run(uploads.append(registry, REPO, state.id, body(data[5:12], data[12:]))).size == 20
    assert uploads.status(registry, REPO, state.id).size == len(data)
    digest = digest_of(data)
    assert run(uploads.finish(registry, REPO, state.id, digest, body())) == digest
    assert_published(meta, store, registry, digest, data)
    assert meta.upload(state.id) is None
    assert list(store.upload_ids()) == []
    with pytest.raises(BlobUploadUnknown):
        uploads.status(registry, REPO, state.id)


def test_chunked_upload_with_start_and_length(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    chunks = [b"a" * 1000, b"b" * 10, b"c" * 333]
    state = run(uploads.start(registry, REPO))
    size = 0
    for chunk in chunks[:2]:
        state = run(uploads.append(registry, REPO, state.id, body(chunk), size, len(chunk)))
        size += len(chunk)
        assert state.size == size
    data = b"".join(chunks)
    digest = run(
        uploads.finish(registry, REPO, state.id, digest_of(data), body(chunks[2]), len(chunks[2]))
    )
    assert_published(meta, store, registry, digest, data)


def test_empty_append_changes_nothing(uploads: Uploads, registry: RegistryRecord) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    assert run(uploads.append(registry, REPO, state.id, body(), 3)).size == 3
    assert run(uploads.append(registry, REPO, state.id, body(b"", b""))).size == 3


def test_out_of_order_chunk_raises_range_invalid(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc"), 0))
    for start in (0, 2, 4, 100):
        with pytest.raises(RangeInvalid) as caught:
            run(uploads.append(registry, REPO, state.id, body(b"zzz"), start))
        assert caught.value.detail == {"size": 3}
        assert caught.value.code == "BLOB_UPLOAD_INVALID"
    assert uploads.status(registry, REPO, state.id).size == 3
    assert store.upload_size(state.id) == 3
    run(uploads.append(registry, REPO, state.id, body(b"def"), 3))
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b"abcdef"), body()))
    assert_published(meta, store, registry, digest, b"abcdef")


def test_chunk_shorter_than_its_length_is_not_counted(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    with pytest.raises(SizeInvalid):
        run(uploads.append(registry, REPO, state.id, body(b"xx"), 3, 10))
    assert uploads.status(registry, REPO, state.id).size == 3
    # The retry overwrites what the failed request left behind.
    run(uploads.append(registry, REPO, state.id, body(b"def"), 3, 3))
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b"abcdef"), body()))
    assert_published(meta, store, registry, digest, b"abcdef")


def test_leftovers_of_a_crashed_request_are_dropped(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    # A request died after writing bytes, before recording the new size.
    writer = store.append_upload(state.id, 3)
    writer.write(b"garbage")
    writer.close()
    run(uploads.append(registry, REPO, state.id, body(b"def")))
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b"abcdef"), body()))
    assert_published(meta, store, registry, digest, b"abcdef")


# -- finishing -------------------------------------------------------------------------------


def test_finish_with_the_last_chunk(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b"whole"), body(b"whole")))
    assert_published(meta, store, registry, digest, b"whole")


def test_finish_empty_blob(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b""), body()))
    assert_published(meta, store, registry, digest, b"")


def test_finish_with_wrong_digest_publishes_nothing(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    wrong = digest_of(b"something else")
    with pytest.raises(DigestInvalid) as caught:
        run(uploads.finish(registry, REPO, state.id, wrong, body(b"def")))
    assert caught.value.detail == {"digest": wrong}
    assert_not_published(meta, store, registry, wrong)
    assert_not_published(meta, store, registry, digest_of(b"abcdef"))
    assert not meta.repository_exists(registry.id, REPO)
    assert meta.repositories(registry.id, None, 10) == []
    # The session is as it was before the failed request, and can still be finished.
    assert uploads.status(registry, REPO, state.id).size == 3
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b"abcdef"), body(b"def")))
    assert_published(meta, store, registry, digest, b"abcdef")


@pytest.mark.parametrize(
    "digest", ["sha256:xyz", "md5:" + "a" * 32, "sha256:" + "A" * 64, "latest"]
)
def test_finish_with_malformed_digest_is_digest_invalid(
    uploads: Uploads, meta: Metadata, registry: RegistryRecord, digest: str
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    with pytest.raises(DigestInvalid):
        run(uploads.finish(registry, REPO, state.id, digest, body()))
    assert uploads.status(registry, REPO, state.id).size == 3
    assert meta.repositories(registry.id, None, 10) == []


def test_blob_already_stored_is_linked_not_copied(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    data = b"shared layer"
    digest = digest_of(data)
    run(uploads.upload_whole(registry, "library/first", digest, body(data)))
    path = store.local_path(digest)
    inode = path.stat().st_ino if path is not None else None
    state = run(uploads.start(registry, REPO))
    assert run(uploads.finish(registry, REPO, state.id, digest, body(data))) == digest
    assert_published(meta, store, registry, digest, data)
    found = meta.linked_blob(registry.id, "library/first", digest)
    assert found == LinkedBlob(len(data), readable=True)
    if path is not None:
        assert path.stat().st_ino == inode
    assert list(store.upload_ids()) == []


def test_sha512_chunked_upload(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    data = b"sha512 " * 1000
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(data[:3000])))
    wrong = digest_of(data + b"!", "sha512")
    with pytest.raises(DigestInvalid):
        run(uploads.finish(registry, REPO, state.id, wrong, body(data[3000:])))
    digest = digest_of(data, "sha512")
    assert run(uploads.finish(registry, REPO, state.id, digest, body(data[3000:]))) == digest
    assert_published(meta, store, registry, digest, data)
    assert_not_published(meta, store, registry, digest_of(data))


# -- monolithic uploads --------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_upload_whole(
    uploads: Uploads,
    meta: Metadata,
    store: BlobStore,
    registry: RegistryRecord,
    algorithm: str,
) -> None:
    data = b"monolithic " * 500
    digest = digest_of(data, algorithm)
    assert run(uploads.upload_whole(registry, REPO, digest, body(data[:100], data[100:]))) == digest
    assert_published(meta, store, registry, digest, data)
    assert meta.upload_ids() == set()
    assert list(store.upload_ids()) == []


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_upload_whole_with_wrong_digest_leaves_nothing(
    uploads: Uploads,
    meta: Metadata,
    store: BlobStore,
    registry: RegistryRecord,
    algorithm: str,
) -> None:
    wrong = digest_of(b"not these bytes", algorithm)
    with pytest.raises(DigestInvalid):
        run(uploads.upload_whole(registry, REPO, wrong, body(b"these bytes")))
    assert_not_published(meta, store, registry, wrong)
    assert list(store.upload_ids()) == []
    assert meta.repositories(registry.id, None, 10) == []


def test_upload_whole_with_wrong_length_leaves_nothing(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    digest = digest_of(b"abc")
    with pytest.raises(SizeInvalid):
        run(uploads.upload_whole(registry, REPO, digest, body(b"abc"), length=4))
    assert_not_published(meta, store, registry, digest)
    assert list(store.upload_ids()) == []


# -- small blobs a peer region sends together -----------------------------------------------


def test_small_blobs_are_stored_together_and_linked_where_stored(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    shared, new = b"shared layer", b"a config"
    run(uploads.upload_whole(registry, "library/first", digest_of(shared), body(shared)))
    blobs = [(REPO, digest_of(shared), shared), (REPO, digest_of(new), new)]
    run(uploads.put_small_blobs(registry, blobs))
    run(uploads.put_small_blobs(registry, blobs))  # again: nothing changes
    for data in (shared, new):
        assert_published(meta, store, registry, digest_of(data), data)
        assert meta.linked_blob(registry.id, REPO, digest_of(data)) is not None
    assert meta.upload_ids() == set()
    assert list(store.upload_ids()) == []


def test_small_blobs_with_one_not_matching_its_digest_store_none(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    good, bad = b"good bytes", b"bad bytes"
    blobs = [(REPO, digest_of(good), good), (REPO, digest_of(b"other bytes"), bad)]
    with pytest.raises(DigestInvalid):
        run(uploads.put_small_blobs(registry, blobs))
    assert_not_published(meta, store, registry, digest_of(good))
    assert meta.upload_ids() == set()


def test_a_small_blob_whose_bytes_went_meanwhile_is_published_again(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    data = b"collected while it was published"
    digest = digest_of(data)
    put = store.put_blob

    def put_then_collected(upload_id: str, digest: str, data: bytes) -> int:
        size = put(upload_id, digest, data)
        store.delete(digest)  # garbage collection found it unclaimed
        store.put_blob = put  # type: ignore[method-assign]
        return size

    store.put_blob = put_then_collected  # type: ignore[method-assign]
    run(uploads.put_small_blobs(registry, [(REPO, digest, data)]))
    assert_published(meta, store, registry, digest, data)
    assert meta.upload_ids() == set()


# -- running hashes across nodes -------------------------------------------------------------


@pytest.fixture
def other_node(meta: Metadata, tmp_path: Path, clock: FakeClock) -> Uploads:
    """A second service on the same database and storage: another node, or a restart."""
    return Uploads(meta, BlobStores(tmp_path / "blobs"), clock)


def test_chunks_that_land_where_the_hash_state_is_missing_are_verified_at_the_end(
    uploads: Uploads,
    other_node: Uploads,
    meta: Metadata,
    store: BlobStore,
    registry: RegistryRecord,
) -> None:
    data = bytes(range(256)) * 10_000  # 2.5 MB: more than one read chunk to rehash
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(data[:1_500_000])))
    run(other_node.append(registry, REPO, state.id, body(data[1_500_000:2_000_000])))
    digest = digest_of(data)
    assert run(other_node.finish(registry, REPO, state.id, digest, body(data[2_000_000:]))) == (
        digest
    )
    assert_published(meta, store, registry, digest, data)


def test_stale_hash_state_is_not_reused(
    uploads: Uploads,
    other_node: Uploads,
    meta: Metadata,
    store: BlobStore,
    registry: RegistryRecord,
) -> None:
    """The first node's running hash covers only its own chunk; another node appended
    since, so the first node must not finish with it."""
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"one,")))
    run(other_node.append(registry, REPO, state.id, body(b"two,")))
    run(uploads.append(registry, REPO, state.id, body(b"three,")))
    run(other_node.append(registry, REPO, state.id, body(b"four,")))
    data = b"one,two,three,four,five"
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(data), body(b"five")))
    assert_published(meta, store, registry, digest, data)


def test_hash_survives_a_failed_finish_on_another_node(
    uploads: Uploads,
    other_node: Uploads,
    meta: Metadata,
    store: BlobStore,
    registry: RegistryRecord,
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    with pytest.raises(DigestInvalid):
        run(other_node.finish(registry, REPO, state.id, digest_of(b"nope"), body(b"XYZ")))
    digest = run(uploads.finish(registry, REPO, state.id, digest_of(b"abcdef"), body(b"def")))
    assert_published(meta, store, registry, digest, b"abcdef")


# -- where store calls run ---------------------------------------------------------------------


class RecordingStore:
    """A filesystem store that records the thread each call (and each writer call) runs
    on, and says it is remote or local as a test asks."""

    def __init__(self, inner: BlobStore, remote: bool) -> None:
        self._inner = inner
        self.remote = remote
        self.threads: list[tuple[str, bool]] = []

    def _note(self, name: str) -> None:
        self.threads.append((name, threading.current_thread() is threading.main_thread()))

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any) -> Any:
            self._note(name)
            result = attribute(*args)
            if name == "append_upload":
                return RecordingWriter(self, result)
            return result

        return call


class RecordingWriter:
    def __init__(self, store: RecordingStore, inner: Any) -> None:
        self._store, self._inner = store, inner

    def write(self, data: bytes) -> None:
        self._store._note("write")
        self._inner.write(data)

    def close(self) -> None:
        self._store._note("close")
        self._inner.close()

    def abandon(self) -> None:
        self._store._note("abandon")
        self._inner.abandon()


@pytest.mark.parametrize("remote", [True, False])
def test_remote_store_calls_run_in_a_thread_local_ones_inline(
    meta: Metadata, tmp_path: Path, clock: FakeClock, registry: RegistryRecord, remote: bool
) -> None:
    recording = RecordingStore(BlobStores(tmp_path / "rec").for_registry(registry.name), remote)
    uploads = Uploads(meta, BlobStores(make=lambda name: recording), clock)  # type: ignore[arg-type]
    data = b"x" * 3000
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(data[:1000])))
    uploads._hashes.drop(state.id)  # as on another node: the digest is recomputed
    run(uploads.finish(registry, REPO, state.id, digest_of(data), body(data[1000:])))
    run(uploads.cancel(registry, REPO, run(uploads.start(registry, REPO)).id))
    called = {name for name, _ in recording.threads}
    assert {"start_upload", "append_upload", "write", "close", "read_upload"} <= called
    assert {"commit_upload", "abort_upload"} <= called
    on_loop = {name for name, main in recording.threads if main}
    # commit_upload (fsync) always runs in a thread; nothing else does on a local store.
    assert on_loop == (set() if remote else called - {"commit_upload"})


def test_chunks_alternating_between_nodes_are_read_back_once(
    meta: Metadata, tmp_path: Path, clock: FakeClock, registry: RegistryRecord
) -> None:
    """A load balancer alternating the chunks of one upload: the upload is read back once,
    when it is finished, not at every chunk that lands away from the running hash."""
    recording = RecordingStore(BlobStores(tmp_path / "rec").for_registry(registry.name), False)
    nodes = [
        Uploads(meta, BlobStores(make=lambda name: recording), clock)  # type: ignore[arg-type]
        for _ in range(2)
    ]
    chunks = [bytes([i]) * 100_000 for i in range(8)]
    state = run(nodes[0].start(registry, REPO))
    for i, chunk in enumerate(chunks):
        run(nodes[(i + 1) % 2].append(registry, REPO, state.id, body(chunk)))
    data = b"".join(chunks)
    run(nodes[0].finish(registry, REPO, state.id, digest_of(data), body(b"")))
    assert [name for name, _ in recording.threads].count("read_upload") == 1
    assert read_blob(recording, digest_of(data)) == data  # type: ignore[arg-type]


IDLE = timedelta(hours=1)


def test_expire_removes_idle_sessions_and_their_data(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord, clock: FakeClock
) -> None:
    idle = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, idle.id, body(b"abandoned")))
    clock.advance(timedelta(minutes=50))
    busy = run(uploads.start(registry, REPO))
    clock.advance(timedelta(minutes=20))
    run(uploads.append(registry, REPO, busy.id, body(b"still going")))
    assert uploads.expire(IDLE) == 1
    assert meta.upload(idle.id) is None
    assert store.upload_size(idle.id) is None
    with pytest.raises(BlobUploadUnknown):
        uploads.status(registry, REPO, idle.id)
    # The session that was touched recently lives on, data and all.
    assert uploads.status(registry, REPO, busy.id).size == 11
    assert store.upload_size(busy.id) == 11
    run(uploads.finish(registry, REPO, busy.id, digest_of(b"still going!"), body(b"!")))


def test_expire_keeps_sessions_that_are_not_idle_long_enough(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord, clock: FakeClock
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"data")))
    clock.advance(timedelta(minutes=59))
    assert uploads.expire(IDLE) == 0
    assert meta.upload(state.id) is not None
    assert store.upload_size(state.id) == 4


def test_expire_removes_old_orphan_partial_files(
    uploads: Uploads,
    meta: Metadata,
    stores: BlobStores,
    store: BlobStore,
    registry: RegistryRecord,
    clock: FakeClock,
) -> None:
    # Partial data no session owns: a crash between writing the file and the row.
    store.start_upload("orphan-here")
    elsewhere = stores.for_registry("fabrikam")
    elsewhere.start_upload("orphan-there")
    live = run(uploads.start(registry, REPO))
    # Fresh orphans may belong to a request in flight: kept.
    assert uploads.expire(IDLE) == 0
    assert store.upload_size("orphan-here") == 0
    clock.advance(timedelta(hours=2))
    run(uploads.append(registry, REPO, live.id, body(b"x")))  # keeps the session alive
    assert uploads.expire(IDLE) == 2
    assert store.upload_size("orphan-here") is None
    assert elsewhere.upload_size("orphan-there") is None
    assert store.upload_size(live.id) == 1
    assert meta.upload_ids() == {live.id}


def test_expire_leaves_published_blobs_alone(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord, clock: FakeClock
) -> None:
    digest = run(uploads.upload_whole(registry, REPO, digest_of(b"kept"), body(b"kept")))
    clock.advance(timedelta(days=30))
    assert uploads.expire(IDLE) == 0
    assert_published(meta, store, registry, digest, b"kept")


def test_expired_session_cannot_be_finished_on_any_node(
    uploads: Uploads,
    other_node: Uploads,
    meta: Metadata,
    store: BlobStore,
    registry: RegistryRecord,
    clock: FakeClock,
) -> None:
    state = run(uploads.start(registry, REPO))
    run(uploads.append(registry, REPO, state.id, body(b"abc")))
    clock.advance(timedelta(hours=2))
    other_node.expire(IDLE)
    with pytest.raises(BlobUploadUnknown):
        run(uploads.finish(registry, REPO, state.id, digest_of(b"abc"), body()))
    assert_not_published(meta, store, registry, digest_of(b"abc"))


# -- locks -----------------------------------------------------------------------------------


def test_write_locked_repository_refuses_new_uploads(
    uploads: Uploads, meta: Metadata, store: BlobStore, registry: RegistryRecord
) -> None:
    running = run(uploads.start(registry, REPO))
    with meta.transaction() as tx:
        repo_id = tx.ensure_repository(registry.id, REPO)
        AttributeWrites(tx).set_locks(repo_id, {"write_enabled": False})
    with pytest.raises(Locked, match='push refused: repository "library/app"'):
        run(uploads.start(registry, REPO))
    data = b"monolithic"
    with pytest.raises(Locked):
        run(uploads.upload_whole(registry, REPO, digest_of(data), body(data)))
    assert_not_published(meta, store, registry, digest_of(data))
    assert list(store.upload_ids()) == []
    assert meta.upload_ids() == {running.id}
    # An upload started before the lock may finish; no manifest can use it while locked.
    data = b"started before"
    run(uploads.finish(registry, REPO, running.id, digest_of(data), body(data)))
    assert_published(meta, store, registry, digest_of(data), data)
    # Another repository is not affected.
    run(uploads.upload_whole(registry, "library/other", digest_of(b"x"), body(b"x")))
