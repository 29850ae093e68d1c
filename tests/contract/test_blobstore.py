"""The `BlobStore` contract: what every backend must do, whatever holds the bytes.

Every test runs once per backend in `conftest.BLOB_STORES`; a backend is correct when
this whole file passes against it. Tests speak only through the `BlobStore` protocol.
"""

from __future__ import annotations

import hashlib
import time

import pytest

from dockyard.storage.base import BlobStore


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def write(store: BlobStore, upload_id: str, at: int, *chunks: bytes) -> None:
    writer = store.append_upload(upload_id, at)
    try:
        for chunk in chunks:
            writer.write(chunk)
    finally:
        writer.close()


def read_upload(store: BlobStore, upload_id: str) -> bytes:
    with store.read_upload(upload_id) as f:
        return f.read()


def read_blob(store: BlobStore, digest: str) -> bytes:
    with store.open(digest) as f:
        return f.read()


def store_blob(store: BlobStore, upload_id: str, data: bytes) -> str:
    """Publish `data` as a caller does: commit, then drop the upload once the blob is
    recorded."""
    digest = digest_of(data)
    store.start_upload(upload_id)
    write(store, upload_id, 0, data)
    assert store.commit_upload(upload_id, digest) == len(data)
    store.abort_upload(upload_id)
    return digest


# -- uploads in progress ---------------------------------------------------------------


def test_started_upload_is_empty(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    assert blobstore.upload_size("u1") == 0
    assert read_upload(blobstore, "u1") == b""


def test_append_grows_the_upload(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, b"hello", b" ")
    assert blobstore.upload_size("u1") == 6
    write(blobstore, "u1", 6, b"world")
    assert blobstore.upload_size("u1") == 11
    assert read_upload(blobstore, "u1") == b"hello world"


def test_append_at_drops_what_was_stored_past_it(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, b"abcdef")
    # A request that failed half-way left "def"; the retry continues at byte 3.
    write(blobstore, "u1", 3, b"XY")
    assert read_upload(blobstore, "u1") == b"abcXY"
    assert blobstore.upload_size("u1") == 5


def test_append_at_zero_restarts_the_upload(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, b"first attempt")
    write(blobstore, "u1", 0)
    assert blobstore.upload_size("u1") == 0
    assert read_upload(blobstore, "u1") == b""


def test_an_abandoned_writer_leaves_an_upload_that_continues_where_it_was(
    blobstore: BlobStore,
) -> None:
    # A request that failed after sending more than a part: its retry continues at the
    # size recorded before it.
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, b"abc")
    failed = blobstore.append_upload("u1", 3)
    failed.write(b"-" * (9 << 20))
    failed.abandon()
    write(blobstore, "u1", 3, b"def")
    assert read_upload(blobstore, "u1") == b"abcdef"
    assert blobstore.commit_upload("u1", digest_of(b"abcdef")) == 6
    blobstore.abort_upload("u1")
    assert read_blob(blobstore, digest_of(b"abcdef")) == b"abcdef"


def test_large_upload_in_many_chunks_round_trips(blobstore: BlobStore) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    chunks = [chunk[i:] + chunk[:i] for i in range(3)]
    blobstore.start_upload("big")
    write(blobstore, "big", 0, *chunks[:2])
    write(blobstore, "big", 2 * len(chunk), chunks[2])
    data = b"".join(chunks)
    assert blobstore.upload_size("big") == len(data)
    digest = digest_of(data)
    assert blobstore.commit_upload("big", digest) == len(data)
    assert read_blob(blobstore, digest) == data


def test_upload_of_many_megabytes_resumed_anywhere_round_trips(blobstore: BlobStore) -> None:
    # Object stores keep uploads in parts of several MiB: appends and retries must hold at
    # and across part boundaries, and a commit must join every part in order.
    mib = 1 << 20
    data = hashlib.sha256(b"seed").digest() * (21 * mib // 32)
    blobstore.start_upload("big")
    for at in range(0, 18 * mib, 3 * mib):
        write(blobstore, "big", at, data[at : at + 3 * mib])
    assert blobstore.upload_size("big") == 18 * mib
    # Retries after failed requests: inside a part, then exactly at a part boundary.
    write(blobstore, "big", 17 * mib + 5, b"garbage" * 1000)
    write(blobstore, "big", 13 * mib + 7, data[13 * mib + 7 : 16 * mib])
    assert blobstore.upload_size("big") == 16 * mib
    write(blobstore, "big", 16 * mib, data[16 * mib :])
    assert blobstore.upload_size("big") == len(data)
    with blobstore.read_upload("big") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()
    digest = digest_of(data)
    assert blobstore.commit_upload("big", digest) == len(data)
    assert blobstore.stat(digest) == len(data)
    with blobstore.open(digest) as f:
        f.seek(9 * mib - 3)
        assert f.read(mib) == data[9 * mib - 3 : 10 * mib - 3]
        f.seek(len(data) - 10)
        assert f.read() == data[-10:]
        f.seek(0)
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def test_open_seeks_for_ranged_reads(blobstore: BlobStore) -> None:
    data = bytes(range(256)) * 40
    digest = store_blob(blobstore, "u1", data)
    with blobstore.open(digest) as f:
        f.seek(1000)
        assert f.read(24) == data[1000:1024]
        assert f.read(10) == data[1024:1034]
        f.seek(len(data) - 1)
        assert f.read(100) == data[-1:]
        f.seek(len(data))
        assert f.read(1) == b""


def test_uploads_are_independent(blobstore: BlobStore) -> None:
    blobstore.start_upload("a")
    blobstore.start_upload("b")
    write(blobstore, "a", 0, b"aaa")
    write(blobstore, "b", 0, b"bbbbb")
    assert read_upload(blobstore, "a") == b"aaa"
    assert read_upload(blobstore, "b") == b"bbbbb"
    blobstore.abort_upload("a")
    assert read_upload(blobstore, "b") == b"bbbbb"


def test_unknown_upload_size_is_none(blobstore: BlobStore) -> None:
    assert blobstore.upload_size("nope") is None


def test_append_to_unknown_upload_raises_key_error(blobstore: BlobStore) -> None:
    with pytest.raises(KeyError):
        blobstore.append_upload("nope", 0)


def test_read_unknown_upload_raises_key_error(blobstore: BlobStore) -> None:
    with pytest.raises(KeyError):
        blobstore.read_upload("nope")


def test_commit_unknown_upload_raises_key_error(blobstore: BlobStore) -> None:
    with pytest.raises(KeyError):
        blobstore.commit_upload("nope", digest_of(b""))


def test_abort_removes_the_upload(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, b"partial")
    blobstore.abort_upload("u1")
    assert blobstore.upload_size("u1") is None
    assert "u1" not in dict(blobstore.upload_ids())
    with pytest.raises(KeyError):
        blobstore.read_upload("u1")
    with pytest.raises(KeyError):
        blobstore.append_upload("u1", 0)


def test_abort_is_idempotent(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    blobstore.abort_upload("u1")
    blobstore.abort_upload("u1")
    blobstore.abort_upload("never-started")
    assert blobstore.upload_size("u1") is None


def test_upload_ids_lists_uploads_with_their_mtime(blobstore: BlobStore) -> None:
    assert list(blobstore.upload_ids()) == []
    before = time.time()
    blobstore.start_upload("a")
    blobstore.start_upload("b")
    write(blobstore, "b", 0, b"data")
    after = time.time()
    listed = dict(blobstore.upload_ids())
    assert set(listed) == {"a", "b"}
    for mtime in listed.values():
        assert isinstance(mtime, float)
        # Allow for coarse timestamps (whole seconds on some object stores).
        assert before - 2 <= mtime <= after + 2


def test_upload_ids_forgets_committed_and_aborted_uploads(blobstore: BlobStore) -> None:
    store_blob(blobstore, "done", b"committed")
    blobstore.start_upload("gone")
    blobstore.abort_upload("gone")
    blobstore.start_upload("live")
    assert set(dict(blobstore.upload_ids())) == {"live"}


# -- committing --------------------------------------------------------------------------


def test_commit_publishes_the_bytes_under_the_digest(blobstore: BlobStore) -> None:
    data = b"layer bytes\n" * 100
    digest = digest_of(data)
    assert blobstore.stat(digest) is None
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, data[:500])
    write(blobstore, "u1", 500, data[500:])
    assert blobstore.commit_upload("u1", digest) == len(data)
    assert blobstore.stat(digest) == len(data)
    assert read_blob(blobstore, digest) == data
    # Committed: no longer an upload one can append to or read ...
    assert blobstore.upload_size("u1") is None
    with pytest.raises(KeyError):
        blobstore.append_upload("u1", len(data))
    with pytest.raises(KeyError):
        blobstore.read_upload("u1")
    # ... but its data is kept (and listed, for the sweeper) until aborted.
    assert "u1" in dict(blobstore.upload_ids())
    blobstore.abort_upload("u1")
    assert "u1" not in dict(blobstore.upload_ids())
    assert read_blob(blobstore, digest) == data


def test_a_kept_commit_publishes_again_after_the_blob_was_deleted(
    blobstore: BlobStore,
) -> None:
    # Garbage collection may remove a digest no row claims yet, between an upload's
    # publication and its row's commit: the commit, made again, restores it.
    data = b"published twice\n" * 50
    digest = digest_of(data)
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, data)
    assert blobstore.commit_upload("u1", digest) == len(data)
    blobstore.delete(digest)
    assert blobstore.stat(digest) is None
    assert blobstore.commit_upload("u1", digest) == len(data)
    assert read_blob(blobstore, digest) == data
    blobstore.abort_upload("u1")
    with pytest.raises(KeyError):
        blobstore.commit_upload("u1", digest)
    assert read_blob(blobstore, digest) == data


def test_put_blob_publishes_small_bytes_in_one_call(blobstore: BlobStore) -> None:
    data = b"a small config blob"
    digest = digest_of(data)
    assert blobstore.put_blob("u1", digest, data) == len(data)
    assert blobstore.stat(digest) == len(data)
    assert read_blob(blobstore, digest) == data
    # Published again over a stored copy, or after the bytes went: the same bytes.
    assert blobstore.put_blob("u2", digest, data) == len(data)
    blobstore.delete(digest)
    assert blobstore.put_blob("u1", digest, data) == len(data)
    assert read_blob(blobstore, digest) == data
    blobstore.abort_upload("u1")
    blobstore.abort_upload("u2")
    assert read_blob(blobstore, digest) == data
    assert list(blobstore.upload_ids()) == []


def test_put_blob_of_a_started_upload_is_removed_with_it(blobstore: BlobStore) -> None:
    data = b"sent whole with the final PUT"
    blobstore.start_upload("u1")
    digest = digest_of(data)
    assert blobstore.put_blob("u1", digest, data) == len(data)
    blobstore.abort_upload("u1")
    assert [upload_id for upload_id, _ in blobstore.upload_ids()] == []
    assert read_blob(blobstore, digest) == data


def test_commit_empty_blob(blobstore: BlobStore) -> None:
    digest = store_blob(blobstore, "u1", b"")
    assert blobstore.stat(digest) == 0
    assert read_blob(blobstore, digest) == b""


def test_commit_sha512_digest(blobstore: BlobStore) -> None:
    data = b"sha512 content"
    digest = digest_of(data, "sha512")
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, data)
    assert blobstore.commit_upload("u1", digest) == len(data)
    assert blobstore.stat(digest) == len(data)
    assert read_blob(blobstore, digest) == data
    # Same bytes, other algorithm: a different blob.
    assert blobstore.stat(digest_of(data)) is None


def test_local_path_is_none_or_the_blob_itself(blobstore: BlobStore) -> None:
    data = b"zero-copy me"
    digest = store_blob(blobstore, "u1", data)
    path = blobstore.local_path(digest)
    if path is not None:
        assert path.is_file()
        assert path.read_bytes() == data
        assert path.stat().st_size == blobstore.stat(digest)


def test_commit_of_a_stored_digest_keeps_the_stored_copy(blobstore: BlobStore) -> None:
    original = b"first copy"
    digest = store_blob(blobstore, "first", original)
    # A second upload of the same digest (the caller verified it; these bytes differ only
    # so the test can tell which copy survives).
    blobstore.start_upload("second")
    write(blobstore, "second", 0, b"other copy")
    assert blobstore.commit_upload("second", digest) == len(original)
    blobstore.abort_upload("second")
    assert read_blob(blobstore, digest) == original
    assert blobstore.stat(digest) == len(original)
    assert blobstore.upload_size("second") is None
    assert "second" not in dict(blobstore.upload_ids())


def test_open_reads_independent_streams(blobstore: BlobStore) -> None:
    data = bytes(range(256))
    digest = store_blob(blobstore, "u1", data)
    with blobstore.open(digest) as a, blobstore.open(digest) as b:
        assert a.read(10) == data[:10]
        assert b.read() == data
        assert a.read() == data[10:]


# -- reading back an upload's last bytes ------------------------------------------------


def test_read_upload_tail_reads_the_bytes_after_any_start(blobstore: BlobStore) -> None:
    # The last bytes of an upload past a whole S3 part: read from its tail (no sealing),
    # then earlier ones (sealing it first on S3); the upload goes on after either.
    mib, block = 1 << 20, 64 << 10
    data = hashlib.sha256(b"tail").digest() * (10 * mib // 32)
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, data[: 3 * mib], data[3 * mib :])
    for start in (8 * mib, 9 * mib + 1, len(data) - block, len(data) - 1, len(data)):
        assert blobstore.read_upload_tail("u1", start, block) == data[start : start + block]
    assert blobstore.read_upload_tail("u1", len(data) + 5, block) == b""
    assert blobstore.read_upload_tail("u1", len(data) - 10, 0) == b""
    write(blobstore, "u1", len(data) - 3, b"end")
    data = data[:-3] + b"end"
    assert blobstore.read_upload_tail("u1", len(data) - 100, block) == data[-100:]
    assert blobstore.read_upload_tail("u1", 10, 100) == data[10:110]
    write(blobstore, "u1", len(data), b"more")
    data += b"more"
    assert blobstore.upload_size("u1") == len(data)
    assert blobstore.commit_upload("u1", digest_of(data)) == len(data)
    assert read_blob(blobstore, digest_of(data)) == data


def test_read_upload_tail_of_a_small_or_unknown_upload(blobstore: BlobStore) -> None:
    blobstore.start_upload("u1")
    assert blobstore.read_upload_tail("u1", 0, 10) == b""
    write(blobstore, "u1", 0, b"abcdef")
    assert blobstore.read_upload_tail("u1", 0, 100) == b"abcdef"
    assert blobstore.read_upload_tail("u1", 2, 3) == b"cde"
    with pytest.raises(KeyError):
        blobstore.read_upload_tail("nope", 0, 10)


# -- replacing a blob's stored bytes -------------------------------------------------------


@pytest.mark.parametrize("published", ["committed", "put whole"])
def test_replace_blob_puts_an_upload_in_place_of_the_stored_copy(
    blobstore: BlobStore, published: str
) -> None:
    # Rewriting how a blob is stored (re-encryption): the same content in practice; here
    # other bytes, so that the test can tell which copy is read.
    old, new = b"stored first", b"stored again"
    digest = digest_of(old)
    if published == "committed":
        store_blob(blobstore, "first", old)
    else:
        blobstore.put_blob("first", digest, old)
        blobstore.abort_upload("first")
    blobstore.start_upload("second")
    write(blobstore, "second", 0, new)
    assert blobstore.replace_blob("second", digest) == len(new)
    assert read_blob(blobstore, digest) == new
    blobstore.abort_upload("second")
    assert read_blob(blobstore, digest) == new
    assert blobstore.stat(digest) == len(new)
    assert list(blobstore.upload_ids()) == []
    blobstore.delete(digest)
    assert blobstore.stat(digest) is None


def test_replace_blob_publishes_a_digest_not_stored_and_needs_the_upload(
    blobstore: BlobStore,
) -> None:
    data = b"nothing to replace"
    blobstore.start_upload("u1")
    write(blobstore, "u1", 0, data)
    assert blobstore.replace_blob("u1", digest_of(data)) == len(data)
    blobstore.abort_upload("u1")
    assert read_blob(blobstore, digest_of(data)) == data
    with pytest.raises(KeyError):
        blobstore.replace_blob("nope", digest_of(data))


# -- listing blobs -------------------------------------------------------------------------


def test_blob_digests_lists_every_stored_blob_once(blobstore: BlobStore) -> None:
    assert list(blobstore.blob_digests()) == []
    committed = store_blob(blobstore, "a", b"committed")
    whole = digest_of(b"put whole")
    blobstore.put_blob("b", whole, b"put whole")
    blobstore.abort_upload("b")
    other = digest_of(b"sha512 content", "sha512")
    blobstore.put_blob("c", other, b"sha512 content")
    gone = store_blob(blobstore, "d", b"deleted")
    blobstore.delete(gone)
    blobstore.start_upload("in-progress")
    write(blobstore, "in-progress", 0, b"not a blob yet")
    assert sorted(blobstore.blob_digests()) == sorted([committed, whole, other])


# -- stat and delete ---------------------------------------------------------------------


def test_stat_of_missing_blob_is_none(blobstore: BlobStore) -> None:
    assert blobstore.stat(digest_of(b"never stored")) is None
    assert blobstore.stat(digest_of(b"never stored", "sha512")) is None


def test_delete_removes_only_that_blob(blobstore: BlobStore) -> None:
    kept = store_blob(blobstore, "a", b"kept")
    gone = store_blob(blobstore, "b", b"gone")
    blobstore.delete(gone)
    assert blobstore.stat(gone) is None
    with pytest.raises(Exception):  # noqa: B017 - the protocol names no exception type
        read_blob(blobstore, gone)
    path = blobstore.local_path(gone)
    assert path is None or not path.exists()
    assert blobstore.stat(kept) == 4
    assert read_blob(blobstore, kept) == b"kept"


def test_delete_takes_several_digests(blobstore: BlobStore) -> None:
    digests = [store_blob(blobstore, f"u{n}", f"blob {n}".encode()) for n in range(5)]
    blobstore.delete(*digests[:3], digest_of(b"never stored"))
    assert [blobstore.stat(digest) for digest in digests] == [None, None, None, 6, 6]
    blobstore.delete()


def test_delete_is_idempotent(blobstore: BlobStore) -> None:
    digest = store_blob(blobstore, "a", b"x")
    blobstore.delete(digest)
    blobstore.delete(digest)
    blobstore.delete(digest_of(b"never stored"))
    assert blobstore.stat(digest) is None


def test_deleted_digest_can_be_stored_again(blobstore: BlobStore) -> None:
    digest = store_blob(blobstore, "a", b"again")
    blobstore.delete(digest)
    assert store_blob(blobstore, "b", b"again") == digest
    assert read_blob(blobstore, digest) == b"again"


# -- readiness ---------------------------------------------------------------------------


def test_check_passes_and_leaves_nothing_behind(blobstore: BlobStore) -> None:
    blobstore.check()
    blobstore.check()
    assert list(blobstore.upload_ids()) == []
    assert blobstore.stat(digest_of(b"")) is None
