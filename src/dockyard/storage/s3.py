"""Blobs in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, ...), under one key prefix
per registry. Never holds a whole blob in memory; never touches the database.

Keys below the registry's prefix:

    uploads/<id>/started          marker written by `start_upload` (the upload exists)
    uploads/<id>/committed        replaces it at commit: the parts are kept, out of reach
                                  of appends and reads, until `abort_upload`
    uploads/<id>/part-<nnnnnn>    the upload's bytes, `PART_SIZE` per part, the last shorter
    blobs/<alg>/<xx>/<hex>        published blobs

An upload in progress is a run of ordinary objects, so any node can read it back (to
recompute the running digest) or continue it at any offset: an append at byte `at`
rewrites part `at // PART_SIZE` from its kept prefix and drops the parts after it. A
writer spools at most one part (on local disk past `_SPOOL_IN_MEMORY`) before putting it.
Commit composes the parts into the blob key with a server-side multipart upload
(`UploadPartCopy`; no byte passes through Dockyard), which S3 makes visible only when it
completes, and checks the published size. The parts stay until the caller aborts the
upload after the blob's row commits: if garbage collection removes the blob before that,
the same commit publishes it again. A process killed during a
commit may leave an incomplete multipart upload on a blob key (invisible; S3 keeps
charging for it until it is aborted): the upload sweeper aborts those older than the
upload expiry (`abort_multipart_before`)."""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

# S3 parts must be at least 5 MiB (all but the last); larger parts cost more to rewrite
# when a chunked upload appends to a part that is not full yet.
PART_SIZE = 8 << 20
_SPOOL_IN_MEMORY = 1 << 20
_READ_ALL_CHUNK = 1 << 20
_MARKER = "started"
_COMMITTED = "committed"
_PART = "part-"


def make_client(
    endpoint: str | None,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    path_style: bool,
) -> Any:
    """A thread-safe S3 client, shared by every registry's store."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=64,
        # S3-compatible stores do not all take the newer default CRC trailers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )


def _missing(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("404", "NoSuchKey", "NotFound") or status == 404


@dataclass(frozen=True)
class _Part:
    index: int
    key: str
    size: int


class S3UploadWriter:
    """Appends to an upload from byte `at`: spools one part at a time and puts each part
    as it fills; `close()` puts the last, shorter one."""

    def __init__(self, store: S3BlobStore, upload_id: str, at: int, parts: list[_Part]) -> None:
        self._store = store
        self._upload_id = upload_id
        self._index = at // PART_SIZE
        # Closed by close(), which every user calls in a `finally`.
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        self._dirty = False
        kept = at - self._index * PART_SIZE
        current = next((p for p in parts if p.index == self._index), None)
        if kept:
            if current is None or current.size < kept:
                raise ValueError(f"upload {upload_id} has fewer than {at} bytes")
            body = store._get(current.key, f"bytes=0-{kept - 1}")
            with body:
                while chunk := body.read(1 << 20):
                    self._spool.write(chunk)
        # Everything past `at` goes: later parts now, this part when it is rewritten.
        store._delete_keys([p.key for p in parts if p.index > self._index])
        if current is not None and (kept < current.size):
            self._dirty = True  # must be rewritten (or removed) even if nothing is written

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = PART_SIZE - self._spool.tell()
            self._spool.write(view[:room])
            view = view[room:]
            self._dirty = True
            if self._spool.tell() == PART_SIZE:
                self._put()
                self._index += 1

    def close(self) -> None:
        try:
            if self._dirty:
                if self._spool.tell() or self._index == 0:
                    self._put()
                else:
                    self._store._delete_keys([self._store._part_key(self._upload_id, self._index)])
        finally:
            self._spool.close()

    def _put(self) -> None:
        size = self._spool.tell()
        self._spool.seek(0)
        self._store._client.put_object(
            Bucket=self._store.bucket,
            Key=self._store._part_key(self._upload_id, self._index),
            Body=self._spool,  # holds exactly this part: truncated after every put
            ContentLength=size,
        )
        self._spool.seek(0)
        self._spool.truncate()
        self._dirty = False


class _ObjectsReader(io.RawIOBase):
    """Objects read as one stream, with `seek`: ranged GETs start where the reader is, and
    no GET is made before the first read."""

    def __init__(self, store: S3BlobStore, keys: list[tuple[str, int]]) -> None:
        self._store = store
        self._keys = keys  # (key, size) in order; size -1 when unknown (a single object)
        self._pos = 0
        self._body: Any = None
        self._index = 0  # object the open body belongs to
        self._offset = 0  # position of the open body within that object

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_CUR:
            offset += self._pos
        elif whence == os.SEEK_END:
            offset += self._total()
        if offset < 0:
            raise ValueError("negative seek position")
        if offset != self._pos:
            self._drop_body()
            self._pos = offset
        return self._pos

    def _total(self) -> int:
        if len(self._keys) == 1 and self._keys[0][1] < 0:
            size = self._store._size_of(self._keys[0][0])
            if size is None:
                raise FileNotFoundError(self._keys[0][0])
            self._keys = [(self._keys[0][0], size)]
        return sum(size for _, size in self._keys)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def _open_body(self) -> bool:
        """Open the object holding `self._pos`; False at the end."""
        start = self._pos
        for index, (key, size) in enumerate(self._keys):
            if size >= 0 and start >= size:
                start -= size
                continue
            try:
                self._body = self._store._get(key, f"bytes={start}-" if start else None)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "InvalidRange":
                    return False
                if _missing(error):
                    raise FileNotFoundError(key) from None
                raise
            self._index, self._offset = index, start
            return True
        return False

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes, as one read of the S3 body returns them: no buffer between
        the body and the caller, so no copy of the bytes on their way to the client."""
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(_READ_ALL_CHUNK), b""))
        if size == 0:
            return b""
        while True:
            if self._body is None and not self._open_body():
                return b""
            data = self._body.read(size)
            if data:
                self._pos += len(data)
                return data
            self._drop_body()
            if self._keys[self._index][1] < 0:
                return b""  # a single object of unknown size: its end is the end

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3BlobStore:
    remote = True

    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self._client = client
        self.bucket = bucket
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""

    # -- keys -----------------------------------------------------------------------------

    def _upload_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{upload_id}/"

    def _part_key(self, upload_id: str, index: int) -> str:
        return f"{self._upload_prefix(upload_id)}{_PART}{index:06d}"

    def _blob_key(self, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        return f"{self.prefix}blobs/{algorithm}/{encoded[:2]}/{encoded}"

    # -- S3 calls -------------------------------------------------------------------------

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", ())

    def _get(self, key: str, byte_range: str | None = None) -> Any:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range:
            kwargs["Range"] = byte_range
        return self._client.get_object(**kwargs)["Body"]

    def _size_of(self, key: str) -> int | None:
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as error:
            if _missing(error):
                return None
            raise

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            result = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if result.get("Errors"):
                raise OSError(f"could not delete {result['Errors'][0]}")

    def _upload_state(self, upload_id: str) -> tuple[str | None, list[_Part]]:
        """(the upload's marker: `_MARKER`, `_COMMITTED` or None if unknown, its parts in
        order)."""
        prefix = self._upload_prefix(upload_id)
        marker, parts = None, []
        for item in self._list(prefix):
            name = item["Key"][len(prefix) :]
            if name == _COMMITTED or (name == _MARKER and marker is None):
                marker = name  # both after a crash mid-commit: committed it is
            elif name.startswith(_PART):
                parts.append(_Part(int(name[len(_PART) :]), item["Key"], item["Size"]))
        parts.sort(key=lambda part: part.index)
        return marker, parts

    # -- uploads --------------------------------------------------------------------------

    def start_upload(self, upload_id: str) -> None:
        self._client.put_object(
            Bucket=self.bucket, Key=self._upload_prefix(upload_id) + _MARKER, Body=b""
        )

    def append_upload(self, upload_id: str, at: int) -> S3UploadWriter:
        marker, parts = self._upload_state(upload_id)
        if marker != _MARKER:
            raise KeyError(upload_id)
        return S3UploadWriter(self, upload_id, at, parts)

    def upload_size(self, upload_id: str) -> int | None:
        marker, parts = self._upload_state(upload_id)
        return sum(part.size for part in parts) if marker == _MARKER else None

    def read_upload(self, upload_id: str) -> BinaryIO:
        marker, parts = self._upload_state(upload_id)
        if marker != _MARKER:
            raise KeyError(upload_id)
        reader = _ObjectsReader(self, [(part.key, part.size) for part in parts])
        return io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[return-value]

    def commit_upload(self, upload_id: str, digest: str) -> int:
        marker, parts = self._upload_state(upload_id)
        if marker is None:
            raise KeyError(upload_id)
        if marker == _MARKER:
            prefix = self._upload_prefix(upload_id)
            self._client.put_object(Bucket=self.bucket, Key=prefix + _COMMITTED, Body=b"")
            self._delete_keys([prefix + _MARKER])
        size = sum(part.size for part in parts)
        target = self._blob_key(digest)
        if self._size_of(target) is None:
            self._publish(parts, target)
            stored = self._size_of(target)
            if stored != size:
                raise OSError(f"{target}: published {stored} bytes, expected {size}")
        return size

    def _publish(self, parts: list[_Part], target: str) -> None:
        if not parts:
            self._client.put_object(Bucket=self.bucket, Key=target, Body=b"")
            return
        if len(parts) == 1:
            source = {"Bucket": self.bucket, "Key": parts[0].key}
            self._client.copy_object(Bucket=self.bucket, Key=target, CopySource=source)
            return
        multipart = self._client.create_multipart_upload(Bucket=self.bucket, Key=target)
        upload = multipart["UploadId"]
        try:
            done = []
            for number, part in enumerate(parts, start=1):
                copied = self._client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=upload,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": part.key},
                )
                done.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=target, UploadId=upload, MultipartUpload={"Parts": done}
            )
        except BaseException:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=upload)
            raise

    def put_blob(self, upload_id: str, digest: str, data: bytes) -> int:
        """One PUT of the blob key: S3 shows an object only once it is complete, and a
        PUT over a stored copy writes the same bytes. Nothing of the upload is kept (the
        caller still holds `data` to publish again)."""
        self._client.put_object(
            Bucket=self.bucket, Key=self._blob_key(digest), Body=data, ContentLength=len(data)
        )
        return len(data)

    def abort_upload(self, upload_id: str) -> None:
        keys = [item["Key"] for item in self._list(self._upload_prefix(upload_id))]
        # The marker last: an upload half-removed by a crash is still listed, and swept.
        keys.sort(key=lambda key: key.endswith((_MARKER, _COMMITTED)))
        self._delete_keys(keys)

    def abort_multipart_before(self, cutoff: float) -> int:
        """Abort this store's multipart uploads started before `cutoff` (epoch s): commits
        killed half-way. Returns how many were aborted."""
        aborted = 0
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}blobs/"):
            for item in page.get("Uploads", ()):
                if item["Initiated"].timestamp() < cutoff:
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=item["Key"], UploadId=item["UploadId"]
                    )
                    aborted += 1
        return aborted

    def upload_ids(self) -> Iterator[tuple[str, float]]:
        prefix = f"{self.prefix}uploads/"
        newest: dict[str, float] = {}
        for item in self._list(prefix):
            upload_id = item["Key"][len(prefix) :].partition("/")[0]
            modified = item["LastModified"].timestamp()
            newest[upload_id] = max(newest.get(upload_id, 0.0), modified)
        yield from newest.items()

    # -- blobs ----------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        # Unbuffered: callers read in large chunks, which `_ObjectsReader.read` hands over
        # as the body returns them.
        return _ObjectsReader(self, [(self._blob_key(digest), -1)])  # type: ignore[return-value]

    def local_path(self, digest: str) -> Path | None:
        return None

    def presigned_url(self, digest: str, expires_in: int = 600) -> str:
        """A URL that lets its holder GET the blob for `expires_in` seconds (signed offline,
        no request made)."""
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._blob_key(digest)},
            ExpiresIn=expires_in,
        )

    def stat(self, digest: str) -> int | None:
        return self._size_of(self._blob_key(digest))

    def delete(self, *digests: str) -> None:
        self._delete_keys([self._blob_key(digest) for digest in digests])

    def check(self) -> None:
        probe = f"{self.prefix}probes/ready-{os.getpid()}-{time.monotonic_ns()}"
        self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"")
        self._client.delete_object(Bucket=self.bucket, Key=probe)


def prefixes(client: Any, bucket: str) -> list[str]:
    """The top-level key prefixes of a bucket: the registries that have data in it."""
    found = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Delimiter="/"):
        found += [entry["Prefix"].rstrip("/") for entry in page.get("CommonPrefixes", ())]
    return found
