"""Blob reads on S3 (a real SeaweedFS) go through pre-signed requests, and a store
remembers where a linked blob's bytes are: a pull after the first costs one GET, and a
link remembered from before the blob was deleted and pushed again is noticed by the
old data's 404, never served wrong."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.storage.s3 import S3BlobStore


def push_chunked(store: S3BlobStore, upload_id: str, data: bytes) -> str:
    """A blob sent as a chunked upload, so that its key links to the upload's data."""
    store.start_upload(upload_id)
    writer = store.append_upload(upload_id, 0)
    writer.write(data)
    writer.close()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.commit_upload(upload_id, digest)
    store.abort_upload(upload_id)
    return digest


class Counted:
    """The store's signed GETs and HEADs, counted."""

    def __init__(self, store: S3BlobStore) -> None:
        self.calls: list[str] = []
        reads = store._reads
        self._get, self._head = reads.get, reads.head
        reads.get = self.get  # type: ignore[method-assign]
        reads.head = self.head  # type: ignore[method-assign]

    def get(self, bucket, key, byte_range=None):  # type: ignore[no-untyped-def]
        self.calls.append("GET")
        return self._get(bucket, key, byte_range)

    def head(self, bucket, key):  # type: ignore[no-untyped-def]
        self.calls.append("HEAD")
        return self._head(bucket, key)


@pytest.fixture
def stores(seaweedfs) -> tuple[S3BlobStore, S3BlobStore]:
    """Two nodes' stores of one registry."""
    client, bucket = seaweedfs.client(), seaweedfs.create_bucket("reads")
    return S3BlobStore(client, bucket, "reg"), S3BlobStore(client, bucket, "reg")


def test_a_known_link_costs_one_get_and_no_botocore_call(stores) -> None:
    reader, _ = stores
    data = b"layer " * 200_000
    digest = push_chunked(reader, "u1", data)
    client = reader._client
    botocore_calls: list[str] = []
    client.meta.events.register(
        "before-call.s3", lambda model, **_: botocore_calls.append(model.name), "count"
    )
    counted = Counted(reader)
    try:
        for _ in range(2):
            with reader.open(digest) as f:
                assert f.read() == data
    finally:
        client.meta.events.unregister("before-call.s3", unique_id="count")
    assert counted.calls == ["HEAD", "GET", "GET"]
    assert botocore_calls == []


def test_a_remembered_link_follows_the_blob_pushed_again(stores) -> None:
    reader, writer = stores
    data = b"base layer " * 100_000
    digest = push_chunked(writer, "first", data)
    with reader.open(digest) as f:
        assert f.read() == data  # the reader now remembers data/first
    writer.delete(digest)  # garbage collection on the other node
    with pytest.raises(FileNotFoundError):
        reader.open(digest).read(10)
    push_chunked(writer, "second", data)
    with reader.open(digest) as f:
        f.seek(11)
        assert f.read() == data[11:]  # from data/second


def test_a_range_past_the_end_reads_nothing(stores) -> None:
    reader, _ = stores
    data = b"z" * 5000
    digest = push_chunked(reader, "u1", data)
    with reader.open(digest) as f:
        f.seek(len(data))
        assert f.read(100) == b""
