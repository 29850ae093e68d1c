"""Abandoned multipart uploads on S3 (a real SeaweedFS): a commit killed half-way leaves
an invisible multipart upload on a blob key, which the upload sweeper aborts once it is
older than the upload expiry, in its own registry's prefix only."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dockyard.core.uploads import Uploads
from dockyard.metadata import migrate
from dockyard.metadata.store import Metadata
from dockyard.storage.s3 import S3BlobStore
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
