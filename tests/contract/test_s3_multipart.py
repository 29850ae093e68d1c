"""Multipart uploads on S3 (a real SeaweedFS): a chunked upload's bytes go into one,
written once, and its blob links to them; one that no upload continues (a request or
commit killed half-way) is aborted by the upload sweeper once it is older than the
upload expiry, in its own registry's prefix only."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.core.uploads import Uploads
from dockyard.metadata import migrate
from dockyard.metadata.store import Metadata
from dockyard.storage.s3 import PART_SIZE, S3BlobStore
from dockyard.storage.stores import BlobStores

KEY = "blobs/sha256/ab/" + "ab" * 32


def begin_commit(store: S3BlobStore) -> str:
    """What a commit killed after its first part copy leaves: an open multipart upload."""
    client = store._client
    upload = client.create_multipart_upload(Bucket=store.bucket, Key=store.prefix + KEY)
    client.upload_part(
        Bucket=store.bucket,
        Key=store.prefix + KEY,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=b"half a blob",
    )
    return upload["UploadId"]


def write_upload(store: S3BlobStore, upload_id: str, data: bytes) -> None:
    store.start_upload(upload_id)
    writer = store.append_upload(upload_id, 0)
    writer.write(data)
    writer.close()


def open_multiparts(client: Any, bucket: str) -> set[tuple[str, str]]:
    listed = client.list_multipart_uploads(Bucket=bucket)
    return {(item["Key"], item["UploadId"]) for item in listed.get("Uploads", ())}


@pytest.fixture
def bucket(seaweedfs) -> str:
    return seaweedfs.create_bucket("multipart")


def test_only_multipart_uploads_older_than_the_cutoff_are_aborted(seaweedfs, bucket) -> None:
    client = seaweedfs.client()
    store, other = S3BlobStore(client, bucket, "one"), S3BlobStore(client, bucket, "two")
    mine, theirs = begin_commit(store), begin_commit(other)
    assert store.abort_multipart_before(time.time() - 3600) == 0  # younger: kept
    assert open_multiparts(client, bucket) == {("one/" + KEY, mine), ("two/" + KEY, theirs)}
    assert store.abort_multipart_before(time.time() + 60) == 1
    assert open_multiparts(client, bucket) == {("two/" + KEY, theirs)}  # another registry's
    assert store.stat("sha256:" + "ab" * 32) is None  # nothing became visible


def test_the_upload_sweeper_aborts_abandoned_multipart_uploads(
    seaweedfs, bucket, tmp_path: Path
) -> None:
    client = seaweedfs.client()
    now = [datetime.now(UTC)]
    meta = Metadata(f"sqlite:///{tmp_path / 'metadata.db'}", lambda: now[0])
    migrate.upgrade(meta.engine)
    stores = BlobStores(
        make=lambda registry: S3BlobStore(client, bucket, registry), names=lambda: ["reg"]
    )
    uploads = Uploads(meta, stores, lambda: now[0])
    try:
        upload = begin_commit(stores.for_registry("reg"))
        assert uploads.expire(timedelta(hours=1)) == 0
        assert open_multiparts(client, bucket) == {("reg/" + KEY, upload)}
        now[0] += timedelta(hours=2)
        assert uploads.expire(timedelta(hours=1)) == 1
        assert open_multiparts(client, bucket) == set()
    finally:
        meta.close()


def test_a_chunked_upload_is_written_once_and_its_blob_links_to_it(seaweedfs, bucket) -> None:
    # Chunks of every size the protocol allows, one retried inside the tail: each full
    # part goes into the upload's multipart upload, and nothing is copied on the way.
    client = seaweedfs.client()
    store = S3BlobStore(client, bucket, "reg")
    copies: list[str] = []
    for call in ("CopyObject", "UploadPartCopy"):
        client.meta.events.register(
            f"before-call.s3.{call}", lambda model, **_: copies.append(model.name), "count"
        )
    mib = 1 << 20
    data = bytes(range(256)) * (19 * mib // 256)
    try:
        store.start_upload("u1")
        for at, end in ((0, 3 * mib), (3 * mib, 10 * mib + 5), (10 * mib + 5, 17 * mib)):
            chunk = store.append_upload("u1", at)
            chunk.write(data[at:end])
            chunk.close()
        writer = store.append_upload("u1", 16 * mib + 1)  # a retry, inside the tail
        writer.write(data[16 * mib + 1 :])
        writer.close()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert store.commit_upload("u1", digest) == len(data)
        store.abort_upload("u1")
    finally:
        for call in ("CopyObject", "UploadPartCopy"):
            client.meta.events.unregister(f"before-call.s3.{call}", unique_id="count")
    assert copies == []
    listed = client.list_objects_v2(Bucket=bucket)["Contents"]
    assert {item["Key"]: item["Size"] for item in listed} == {
        store._blob_key(digest): 0,  # the link
        "reg/data/u1": len(data),
    }
    assert open_multiparts(client, bucket) == set()
    with store.open(digest) as f:
        assert f.read() == data
    store.delete(digest)
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_the_sweeper_leaves_the_multipart_upload_of_a_live_upload(seaweedfs, bucket) -> None:
    store = S3BlobStore(seaweedfs.client(), bucket, "reg")
    store.start_upload("live")
    writer = store.append_upload("live", 0)
    writer.write(b"x" * (9 << 20))
    writer.close()
    assert store.abort_multipart_before(time.time() + 60) == 0
    assert store.upload_size("live") == 9 << 20
    store.abort_upload("live")
    assert open_multiparts(seaweedfs.client(), bucket) == set()


def test_an_upload_killed_mid_commit_keeps_its_blob_when_swept(seaweedfs, bucket) -> None:
    # Killed between marking the upload committed and removing its `started` marker:
    # the upload's removal leaves the data its blob links to.
    client = seaweedfs.client()
    store = S3BlobStore(client, bucket, "reg")
    data = b"y" * (9 << 20)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    store.start_upload("u1")
    writer = store.append_upload("u1", 0)
    writer.write(data)
    writer.close()
    assert store.commit_upload("u1", digest) == len(data)
    client.put_object(Bucket=bucket, Key="reg/uploads/u1/started", Body=b"")
    store.abort_upload("u1")
    assert list(store.upload_ids()) == []
    with store.open(digest) as f:
        assert f.read() == data


def test_reading_an_upload_tail_leaves_it_unsealed(seaweedfs, bucket) -> None:
    # The tail is the `started` marker's body: no completion, so the next append goes on
    # in the same multipart upload; a start before the tail seals it.
    store = S3BlobStore(seaweedfs.client(), bucket, "reg")
    data = hashlib.sha256(b"parts").digest() * ((PART_SIZE + 1000) // 32)
    store.start_upload("u1")
    writer = store.append_upload("u1", 0)
    writer.write(data)
    writer.close()
    assert store.read_upload_tail("u1", PART_SIZE + 10, 100) == data[PART_SIZE + 10 :][:100]
    assert store.read_upload_tail("u1", PART_SIZE, 1 << 20) == data[PART_SIZE:]
    state = store._started("u1")
    assert state is not None and state.sealed is None and state.parts == 1
    assert store.read_upload_tail("u1", 5, 10) == data[5:15]
    state = store._started("u1")
    assert state is not None and state.sealed == len(data)


def test_replace_blob_removes_the_data_it_replaced(seaweedfs, bucket) -> None:
    client = seaweedfs.client()
    store = S3BlobStore(client, bucket, "reg")
    digest = "sha256:" + hashlib.sha256(b"old").hexdigest()
    write_upload(store, "first", b"old")
    store.commit_upload("first", digest)
    store.abort_upload("first")
    write_upload(store, "second", b"new")
    store.replace_blob("second", digest)
    store.abort_upload("second")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="reg/data/")
    assert [item["Key"] for item in listed.get("Contents", ())] == ["reg/data/second"]


def test_a_replace_killed_before_deleting_the_old_data_leaves_it_to_the_abort(
    seaweedfs, bucket
) -> None:
    # What a process killed between the new link and the delete leaves: the committed
    # marker names the old data, and the upload's abort (the sweeper's) removes it.
    client = seaweedfs.client()
    store = S3BlobStore(client, bucket, "reg")
    digest = "sha256:" + hashlib.sha256(b"old").hexdigest()
    write_upload(store, "first", b"old")
    write_upload(store, "second", b"new")
    store.commit_upload("first", digest)
    store.abort_upload("first")
    size = store._commit_marker("second", digest, "reg/data/first")
    store._link_to_data("second", digest, size)
    listed = client.list_objects_v2(Bucket=bucket, Prefix="reg/data/")
    assert [item["Key"] for item in listed["Contents"]] == ["reg/data/first", "reg/data/second"]
    store.abort_upload("second")
    listed = client.list_objects_v2(Bucket=bucket, Prefix="reg/data/")
    assert [item["Key"] for item in listed["Contents"]] == ["reg/data/second"]
    with store.open(digest) as f:
        assert f.read() == b"new"
