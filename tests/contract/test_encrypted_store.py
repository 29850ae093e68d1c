"""`EncryptedBlobStore` over files and over a real SeaweedFS: what it stores is never the
plaintext, reads at any offset open only the blocks they need, uploads resume at any
byte, altered bytes and wrong keys fail loudly, legacy plaintext blobs still read and
convert, and conversions killed at any point leave every blob readable.

The contract suite (`test_blobstore.py`) runs on it too (`encrypted-filesystem`,
`encrypted-s3` in `conftest.BLOB_STORES`); these are the properties of its own."""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from keyrings import KEYS, FixedKeyring
from seaweedfs import SeaweedFS

from dockyard.common.errors import BlobCorrupt, KeyUnavailable
from dockyard.storage.base import UPLOAD_TAIL_ALIGNMENT, BlobStore
from dockyard.storage.encrypted import (
    BLOCK_SIZE,
    CAPACITY,
    FIRST_CAPACITY,
    HEADER_SIZE,
    EncryptedBlobStore,
    encrypted_digest,
)
from dockyard.storage.filesystem import FilesystemBlobStore
from dockyard.storage.s3 import PART_SIZE, S3BlobStore

KIB, MIB = 1 << 10, 1 << 20
PREFIX = "registry"


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def pattern(size: int, seed: bytes = b"") -> bytes:
    """Bytes that differ at every offset (a wrong offset never reads right)."""
    block = hashlib.sha256(seed).digest()
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(block + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def write(store: BlobStore, upload_id: str, at: int, *chunks: bytes) -> None:
    writer = store.append_upload(upload_id, at)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()


def push(store: BlobStore, upload_id: str, data: bytes, chunk: int = 3 * MIB) -> str:
    """A chunked upload, committed and dropped as the registry does."""
    store.start_upload(upload_id)
    for at in range(0, max(len(data), 1), chunk):
        write(store, upload_id, at, data[at : at + chunk])
    digest = digest_of(data)
    assert store.commit_upload(upload_id, digest) == len(data)
    store.abort_upload(upload_id)
    return digest


def read_all(store: BlobStore, digest: str) -> bytes:
    with store.open(digest) as f:
        return f.read()


@dataclass
class Stores:
    """An encrypted store, the store under it, and ways to reach its raw bytes."""

    kind: str
    inner: Any
    store: EncryptedBlobStore
    keyring: FixedKeyring
    root: Path | None = None
    seaweedfs: SeaweedFS | None = None

    def encrypted(self, keyring: FixedKeyring | None = None) -> EncryptedBlobStore:
        """Another encrypted store on the same bytes (another process, another keyring)."""
        return EncryptedBlobStore(self.inner, keyring or self.keyring)

    def _key(self, digest: str) -> str:
        located = self.inner._linked(self.inner._blob_key(digest))
        assert located is not None
        return located[0]

    def stored(self, digest: str) -> bytes:
        """The bytes the inner store holds under `digest`."""
        if self.kind == "filesystem":
            return self.inner.local_path(digest).read_bytes()
        response = self.inner._client.get_object(Bucket=self.inner.bucket, Key=self._key(digest))
        return response["Body"].read()

    def overwrite(self, digest: str, data: bytes) -> None:
        """Put other bytes where the inner store holds `digest`'s (as an attacker would)."""
        if self.kind == "filesystem":
            self.inner.local_path(digest).write_bytes(data)
        else:
            key = self._key(digest)
            self.inner._client.put_object(Bucket=self.inner.bucket, Key=key, Body=data)

    def everything_stored(self) -> Iterator[tuple[str, bytes]]:
        """Every file under the store, or every object in the bucket and every file of
        SeaweedFS (parts of multipart uploads in progress are no objects yet)."""
        if self.kind == "filesystem":
            assert self.root is not None
            for path in self.root.rglob("*"):
                if path.is_file():
                    yield str(path), path.read_bytes()
            return
        client, bucket = self.inner._client, self.inner.bucket
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", ()):
                yield item["Key"], client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        assert self.seaweedfs is not None and self.seaweedfs.root is not None
        for path in (self.seaweedfs.root / "data").rglob("*"):
            if path.is_file():
                yield str(path), path.read_bytes()


def make_stores(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    keyring = FixedKeyring()
    if kind == "filesystem":
        inner: Any = FilesystemBlobStore(tmp_path / "store")
        return Stores(kind, inner, EncryptedBlobStore(inner, keyring), keyring, tmp_path / "store")
    seaweedfs = request.getfixturevalue("seaweedfs")
    inner = S3BlobStore(seaweedfs.client(), seaweedfs.create_bucket("encrypted"), PREFIX)
    return Stores(kind, inner, EncryptedBlobStore(inner, keyring), keyring, seaweedfs=seaweedfs)


@pytest.fixture(params=["filesystem", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Stores:
    return make_stores(request.param, request, tmp_path)


def test_blocks_align_with_the_s3_parts() -> None:
    # The last block of an upload lies in S3's readable tail only if parts are whole
    # blocks; the layout's arithmetic rests on these sizes.
    assert PART_SIZE == UPLOAD_TAIL_ALIGNMENT
    assert UPLOAD_TAIL_ALIGNMENT % BLOCK_SIZE == 0
    assert (HEADER_SIZE, FIRST_CAPACITY, CAPACITY) == (102, BLOCK_SIZE - 130, BLOCK_SIZE - 28)


# -- nothing stored in the clear -------------------------------------------------------------


def test_no_plaintext_is_stored_anywhere(stores: Stores) -> None:
    # Incompressible (SeaweedFS compresses what it can, which would hide a marker).
    marker = b"PLAINTEXT-MARKER-" + secrets.token_hex(8).encode()
    data = b"".join(marker + os.urandom(1000) for _ in range(9 * MIB // 1000))
    store = stores.store
    push(store, "chunked", data)
    small = marker + os.urandom(100)
    store.put_blob("whole", digest_of(small), small)
    store.abort_upload("whole")
    # Uploads in progress: one past a whole S3 part (its parts are not objects yet), one
    # small, one left by a request that failed half-way.
    store.start_upload("big")
    write(store, "big", 0, data[: 8 * MIB], data[8 * MIB : 9 * MIB])
    store.start_upload("small")
    write(store, "small", 0, marker * 3)
    failed = store.append_upload("small", len(marker) * 3)
    failed.write(marker * 100_000)
    failed.abandon()
    found = [name for name, content in stores.everything_stored() if marker in content]
    assert found == []
    # The scan sees plaintext where it is, in the files themselves: an upload in progress
    # of the inner store, past a part.
    stores.inner.start_upload("legacy")
    write(stores.inner, "legacy", 0, data)
    found = [name for name, content in stores.everything_stored() if marker in content]
    files = stores.root or (stores.seaweedfs and stores.seaweedfs.root)
    assert any(name.startswith(str(files)) for name in found)
    assert read_all(store, digest_of(data)) == data


# -- ranged reads ----------------------------------------------------------------------------

# Plaintext offsets where blocks meet: block 0 ends at FIRST_CAPACITY, block 1 at
# FIRST_CAPACITY + CAPACITY.
OFFSETS = (
    0,
    1,
    BLOCK_SIZE - 1,
    BLOCK_SIZE,
    FIRST_CAPACITY - 1,
    FIRST_CAPACITY,
    FIRST_CAPACITY + 1,
    FIRST_CAPACITY + CAPACITY - 1,
    FIRST_CAPACITY + CAPACITY,
    FIRST_CAPACITY + CAPACITY + 1,
)


class CountingSource:
    """A stored object's stream, counting the bytes read from it."""

    def __init__(self, source: BinaryIO, counts: list[int]) -> None:
        self._source, self._counts = source, counts

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self._counts.append(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)


def test_ranged_reads_at_and_around_block_boundaries(stores: Stores) -> None:
    data = pattern(5 * BLOCK_SIZE + 123, b"ranges")
    digest = push(stores.store, "u1", data)
    assert stores.store.stat(digest) == len(data)
    reads: list[int] = []
    opened = stores.inner.open

    def counted_open(stored: str) -> Any:
        return CountingSource(opened(stored), reads)

    stores.inner.open = counted_open
    for offset in (*OFFSETS, len(data) - 1):
        for length in (1, 100, BLOCK_SIZE + 7):
            with stores.store.open(digest) as f:
                f.seek(offset)
                assert f.read(length) == data[offset : offset + length], (offset, length)
            # The header, then the blocks that hold the range: never the whole blob.
            blocks = (length + BLOCK_SIZE - 1) // BLOCK_SIZE + 1
            assert sum(reads) <= HEADER_SIZE + blocks * BLOCK_SIZE, (offset, length)
            reads.clear()
    with stores.store.open(digest) as f:
        assert f.seek(0, os.SEEK_END) == len(data)
        f.seek(len(data))
        assert f.read(10) == b""
        f.seek(len(data) + 10 * BLOCK_SIZE)
        assert f.read(10) == b""
        f.seek(-3, os.SEEK_END)
        assert f.read() == data[-3:]


def test_sequential_reads_of_every_size_read_the_blob(stores: Stores) -> None:
    # Reads of many blocks go in runs (decrypted straight into the chunk returned); the
    # sizes here start runs at block starts and inside blocks, and end them before,
    # at and after the blob's last, short block.
    data = pattern(40 * BLOCK_SIZE + 4321, b"runs")
    digest = push(stores.store, "u1", data)
    for size in (CAPACITY, 2 * CAPACITY, 3 * CAPACITY + 1, MIB, 3 * MIB + 17, 8 * MIB):
        with stores.store.open(digest) as f:
            chunks = list(iter(lambda f=f, size=size: f.read(size), b""))
        assert b"".join(chunks) == data, size
        assert all(len(chunk) <= size for chunk in chunks), size
    with stores.store.open(digest) as f:
        f.seek(FIRST_CAPACITY + 5 * CAPACITY + 99)
        assert f.read(MIB) == data[FIRST_CAPACITY + 5 * CAPACITY + 99 :][:MIB]


@pytest.mark.parametrize(
    "size", [0, 1, FIRST_CAPACITY - 1, FIRST_CAPACITY, FIRST_CAPACITY + CAPACITY, 200 * KIB]
)
def test_sizes_at_block_boundaries_round_trip(stores: Stores, size: int) -> None:
    data = pattern(size, b"sizes")
    digest = digest_of(data)
    for published in ("chunked", "whole"):
        if published == "chunked":
            push(stores.store, "u1", data, chunk=FIRST_CAPACITY)
        else:
            stores.store.put_blob("u1", digest, data)
        assert stores.store.stat(digest) == size
        assert read_all(stores.store, digest) == data
        # A last block always ends the object, shorter than a whole one.
        stored = len(stores.stored(encrypted_digest(digest)))
        assert stored % BLOCK_SIZE != 0 and stored >= HEADER_SIZE + 28
        stores.store.delete(digest)


# -- resumed uploads -------------------------------------------------------------------------


def test_uploads_resume_at_every_kind_of_offset(stores: Stores) -> None:
    store = stores.store
    data = pattern(11 * MIB, b"resume")
    # The stored size where the 8 MiB part ends (S3's tail starts) is about this far in
    # the plaintext; the block that starts exactly there.
    part_block = UPLOAD_TAIL_ALIGNMENT // BLOCK_SIZE
    at_part = FIRST_CAPACITY + (part_block - 1) * CAPACITY
    store.start_upload("u1")
    stops = [
        100,  # inside block 0
        FIRST_CAPACITY,  # where block 1 starts
        FIRST_CAPACITY + 5,  # inside block 1
        FIRST_CAPACITY + CAPACITY,  # where block 2 starts
        at_part - 1000,  # just before the first S3 part fills up
        at_part + 10,  # across it: block 128 starts the tail
        at_part + CAPACITY,
        10 * MIB,
        len(data),
    ]
    at = 0
    for stop in stops:
        write(store, "u1", at, data[at:stop])
        assert store.upload_size("u1") == stop
        # A request that failed after sending more: dropped by the retry at `stop`.
        failed = store.append_upload("u1", stop)
        failed.write(pattern(70 * KIB, b"garbage"))
        failed.abandon()
        # The current end, with nothing new: the same bytes.
        write(store, "u1", stop)
        at = stop
    # Going back: into the last block, then into the first part, then into block 0.
    for back in (len(data) - 10, at_part + 5, 50):
        middle = min(back + 1000, len(data))
        write(store, "u1", back, data[back:middle])
        write(store, "u1", middle, data[middle:])
    with store.read_upload("u1") as f:
        assert hashlib.sha256(f.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    digest = digest_of(data)
    assert store.commit_upload("u1", digest) == len(data)
    store.abort_upload("u1")
    assert list(store.upload_ids()) == []
    assert list(stores.inner.upload_ids()) == []  # the header's copy went with it
    with store.open(digest) as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest.removeprefix("sha256:")


def test_an_upload_begun_before_encryption_is_not_continued(stores: Stores) -> None:
    stores.inner.start_upload("u1")
    write(stores.inner, "u1", 0, pattern(1000, b"plaintext from before"))
    with pytest.raises(KeyError):
        stores.store.append_upload("u1", 5)
    write(stores.store, "u1", 0, b"started again")
    assert stores.store.commit_upload("u1", digest_of(b"started again")) == 13


# -- altered bytes and wrong keys ------------------------------------------------------------


def blocks_of(stored: bytes) -> list[bytes]:
    return [stored[i : i + BLOCK_SIZE] for i in range(0, len(stored), BLOCK_SIZE)]


@pytest.mark.parametrize("published", ["chunked", "whole"])
def test_altered_bytes_fail_authentication(stores: Stores, published: str) -> None:
    data = pattern(4 * BLOCK_SIZE + 10, b"altered")
    digest = digest_of(data)
    if published == "chunked":
        push(stores.store, "u1", data)
    else:
        stores.store.put_blob("u1", digest, data)
    encrypted = encrypted_digest(digest)
    original = stores.stored(encrypted)
    other = pattern(len(data), b"other")
    stores.store.put_blob("u2", digest_of(other), other)
    foreign = stores.stored(encrypted_digest(digest_of(other)))
    flipped = bytearray(original)
    flipped[2 * BLOCK_SIZE + 40] ^= 1
    salted = bytearray(original)
    salted[HEADER_SIZE - 1] ^= 1
    blocks = blocks_of(original)
    swapped = b"".join((blocks[0], blocks[2], blocks[1], *blocks[3:]))
    moved = (
        original[: 2 * BLOCK_SIZE]
        + foreign[2 * BLOCK_SIZE : 3 * BLOCK_SIZE]
        + original[3 * BLOCK_SIZE :]
    )
    for altered in (bytes(flipped), bytes(salted), swapped, moved):
        stores.overwrite(encrypted, altered)
        with pytest.raises(BlobCorrupt, match="does not authenticate"):
            read_all(stores.store, digest)
    # Cut at a block boundary, or inside a block.
    for cut in (original[: 3 * BLOCK_SIZE], original[:-1]):
        stores.overwrite(encrypted, cut)
        with pytest.raises(BlobCorrupt):
            read_all(stores.store, digest)
    # Where nothing was altered, a ranged read still succeeds.
    stores.overwrite(encrypted, bytes(flipped))
    with stores.store.open(digest) as f:
        assert f.read(100) == data[:100]
        f.seek(FIRST_CAPACITY + CAPACITY + 5)
        with pytest.raises(BlobCorrupt):
            f.read(10)
    stores.overwrite(encrypted, original)
    assert read_all(stores.store, digest) == data


def test_a_wrong_or_missing_key_fails_clearly(stores: Stores) -> None:
    data = pattern(3 * BLOCK_SIZE, b"keys")
    digest = push(stores.store, "u1", data)
    wrong = stores.encrypted(FixedKeyring({"k1": KEYS["k2"]}))
    with pytest.raises(BlobCorrupt, match="does not authenticate") as raised:
        read_all(wrong, digest)
    assert KEYS["k2"].hex() not in str(raised.value) and KEYS["k1"].hex() not in str(raised.value)
    missing = stores.encrypted(FixedKeyring({"k2": KEYS["k2"]}, current="k2"))
    with pytest.raises(KeyUnavailable, match="encryption key is unavailable"):
        read_all(missing, digest)
    with pytest.raises(KeyUnavailable):
        FixedKeyring({}, current="k9").current()
    assert read_all(stores.store, digest) == data


# -- legacy blobs, conversions ---------------------------------------------------------------


@pytest.mark.parametrize("look", ["open", "stat"])
def test_a_blob_converted_between_the_two_looks_opens_and_stats(
    stores: Stores, look: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`open` and `stat` find no encrypted copy, then `encrypt_existing` converts the
    blob before they look for its plaintext: they answer from the encrypted copy."""
    data = pattern(200 * KIB, b"race")
    digest = push(stores.inner, "race", data)
    store, inner = stores.store, stores.inner
    real = getattr(inner, look)

    def converting_first(wanted: str) -> Any:
        if wanted == digest:
            monkeypatch.undo()
            assert store.encrypt_existing(digest) is True
        return real(wanted)

    monkeypatch.setattr(inner, look, converting_first)
    assert (read_all(store, digest) if look == "open" else store.stat(digest)) == (
        data if look == "open" else len(data)
    )
    assert store.key_id_of(digest) is not None


def test_a_legacy_blob_reads_and_is_encrypted_in_place(stores: Stores) -> None:
    data = pattern(300 * KIB, b"legacy")
    digest = push(stores.inner, "legacy", data)  # stored before encryption was on
    store = stores.store
    assert store.stat(digest) == len(data)
    assert read_all(store, digest) == data
    assert list(store.legacy_digests()) == [digest]
    assert store.key_id_of(digest) is None
    if stores.kind == "filesystem":
        assert store.local_path(digest) == stores.inner.local_path(digest)
    with store.open(digest) as reader:
        assert reader.read(1000) == data[:1000]
        assert store.encrypt_existing(digest) is True
        reader.seek(200 * KIB)  # on S3 a new GET: the plaintext has gone
        assert reader.read() == data[200 * KIB :]
    assert stores.inner.stat(digest) is None
    assert store.key_id_of(digest) == "k1"
    assert list(store.legacy_digests()) == []
    assert list(store.encrypted_digests()) == list(store.blob_digests()) == [digest]
    assert store.stat(digest) == len(data)
    assert store.local_path(digest) is None
    assert read_all(store, digest) == data
    assert store.encrypt_existing(digest) is False
    store.delete(digest)
    assert store.stat(digest) is None and list(stores.inner.blob_digests()) == []


def test_a_legacy_blob_that_does_not_match_its_digest_is_not_converted(stores: Stores) -> None:
    digest = digest_of(b"what the row says")
    stores.inner.put_blob("legacy", digest, b"what the disk says")
    stores.inner.abort_upload("legacy")
    with pytest.raises(BlobCorrupt, match="another digest"):
        stores.store.encrypt_existing(digest)
    assert stores.store.key_id_of(digest) is None
    assert read_all(stores.store, digest) == b"what the disk says"
    assert list(stores.inner.upload_ids()) == []


@pytest.mark.parametrize("published", ["chunked", "whole"])
def test_reencrypt_keeps_a_reader_opened_before_it_reading(stores: Stores, published: str) -> None:
    data = pattern(700 * KIB, b"rotate")
    digest = digest_of(data)
    store = stores.store
    if published == "chunked":
        push(store, "u1", data)
    else:
        store.put_blob("u1", digest, data)
        store.abort_upload("u1")
    assert store.reencrypt(digest, {"k1"}) is False
    with store.open(digest) as reader:
        assert reader.read(100 * KIB) == data[: 100 * KIB]
        stores.keyring.current_id = "k2"
        with pytest.raises(ValueError):
            store.reencrypt(digest, {"k1"})
        assert store.reencrypt(digest, {"k2"}) is True
        reader.seek(600 * KIB)
        assert reader.read(10 * KIB) == data[600 * KIB : 610 * KIB]
        reader.seek(100 * KIB)
        assert reader.read() == data[100 * KIB :]
    assert store.key_id_of(digest) == "k2"
    assert store.reencrypt(digest, {"k2"}) is False
    del stores.keyring.keys["k1"]  # the old key is no longer needed
    assert read_all(store, digest) == data
    assert list(stores.inner.upload_ids()) == []
    assert sorted(stores.inner.blob_digests()) == [encrypted_digest(digest)]
    if stores.kind == "s3" and published == "chunked":
        listed = stores.inner._client.list_objects_v2(
            Bucket=stores.inner.bucket, Prefix=f"{PREFIX}/data/"
        )
        assert len(listed["Contents"]) == 1  # the old ciphertext went


def test_no_presigned_urls_and_the_sweeper_calls_pass_through(stores: Stores) -> None:
    # The bucket holds ciphertext: a client sent to it would get that.
    assert not hasattr(stores.store, "presigned_url")
    assert stores.store.remote is stores.inner.remote
    assert stores.store.abort_multipart_before(time.time() - 3600) == 0
    stores.store.check()
    stores.keyring.current_id = "gone"
    with pytest.raises(KeyUnavailable):
        stores.store.check()


# -- conversions killed half-way -------------------------------------------------------------

CONVERTER = """
import sys
from pathlib import Path

sys.path.insert(0, sys.argv[1])
from keyrings import FixedKeyring
from dockyard.storage.encrypted import EncryptedBlobStore

kind, where, job, current = sys.argv[2:6]
if kind == "filesystem":
    from dockyard.storage.filesystem import FilesystemBlobStore

    inner = FilesystemBlobStore(Path(where))
else:
    from dockyard.storage.s3 import S3BlobStore, make_client

    endpoint, bucket, access_key, secret_key = where.split(",")
    client = make_client(
        endpoint, "us-east-1", access_key, secret_key, True,
        connect_timeout=2, read_timeout=5, max_attempts=2,
    )
    inner = S3BlobStore(client, bucket, sys.argv[6])
store = EncryptedBlobStore(inner, FixedKeyring(current=current))
if job == "encrypt":
    digests = list(store.legacy_digests())
else:
    digests = list(store.encrypted_digests())
for digest in digests:
    if job == "encrypt":
        store.encrypt_existing(digest)
    else:
        store.reencrypt(digest, {current})
    print(digest, flush=True)
print("done", flush=True)
"""


def run_converter(stores: Stores, job: str, current: str, kill: bool) -> bool:
    """Run a conversion in a process of its own; with `kill`, SIGKILL it at a random
    moment after its first blob. True if it finished."""
    if stores.kind == "filesystem":
        assert stores.root is not None
        where = str(stores.root)
    else:
        assert stores.seaweedfs is not None
        seaweedfs = stores.seaweedfs
        where = ",".join(
            (seaweedfs.endpoint, stores.inner.bucket, seaweedfs.access_key, seaweedfs.secret_key)
        )
    tests = str(Path(__file__).parent.parent)
    args = [sys.executable, "-c", CONVERTER, tests, stores.kind, where, job, current, PREFIX]
    with subprocess.Popen(args, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        if kill and first and first.strip() != "done":
            time.sleep(random.uniform(0, 0.05))
            os.kill(process.pid, signal.SIGKILL)
        rest = process.stdout.read()
        process.wait(60)
    return "done" in first + rest


@pytest.mark.slow
def test_conversions_killed_at_any_moment_leave_every_blob_readable(stores: Stores) -> None:
    random.seed(16)
    sizes = [0, 10, FIRST_CAPACITY, 200 * KIB, 1 * MIB, 2 * MIB + 5] * 4
    if stores.kind == "s3":
        sizes.append(9 * MIB)  # past a part: a multipart upload
    blobs = {}
    for index, size in enumerate(sizes):
        data = pattern(size, str(index).encode())
        if index % 2:
            stores.inner.put_blob(f"b{index}", digest_of(data), data)
            stores.inner.abort_upload(f"b{index}")
        else:
            push(stores.inner, f"b{index}", data)
        blobs[digest_of(data)] = data

    def check(keyring: FixedKeyring) -> None:
        store = stores.encrypted(keyring)
        for digest, data in blobs.items():
            assert store.stat(digest) == len(data)
            assert read_all(store, digest) == data

    for job, current in (("encrypt", "k1"), ("reencrypt", "k2")):
        for _ in range(4):
            if run_converter(stores, job, current, kill=True):
                break
            check(FixedKeyring())
        assert run_converter(stores, job, current, kill=False)
        check(FixedKeyring())
        # What killed conversions left of their uploads, the sweeper removes (on S3 with
        # the old data of a replace killed half-way, which a remembered link still reads).
        for upload_id, _ in list(stores.store.upload_ids()):
            assert upload_id.startswith("convert-")
            stores.store.abort_upload(upload_id)
        store = stores.encrypted()
        assert list(store.legacy_digests()) == []
        assert {store.key_id_of(digest) for digest in blobs} == {current}
    check(FixedKeyring({"k2": KEYS["k2"]}, current="k2"))
