"""Blobs in an S3-compatible bucket (AWS S3, SeaweedFS, MinIO, ...), under one key prefix
per registry. Never holds a whole blob in memory; never touches the database.

Keys below the registry's prefix:

    uploads/<id>/started      an upload in progress: its state in its user metadata (the
                              full parts sent, the multipart upload holding them, or the
                              size once sealed) and, as its body, the bytes after the
                              full parts (fewer than `PART_SIZE`: the tail)
    uploads/<id>/committed    replaces it at commit (empty; the digest and size in its
                              metadata): the upload is out of reach of appends and reads,
                              its data kept until `abort_upload`
    data/<id>                 the upload's bytes: a multipart upload while it is sent,
                              `PART_SIZE` a part, an object once sealed
    blobs/<alg>/<xx>/<hex>    a published blob: its bytes (a small blob sent whole, and
                              blobs stored before this layout), or an empty link whose
                              metadata names the key holding them (`data/<id>`) and
                              their size

Every byte of a chunked upload is written once: each full part goes straight into the
upload's multipart upload (made with the first), and sealing completes it, which S3
does without copying. S3 names an object when its upload starts, and a blob's digest
is known only at the end, so the blob key links to the data instead of holding it
(a rename does not exist in S3, and a copy would write every byte again): reading a
blob costs one HEAD more, resolving the link.

The state lives in the bucket, so any node continues an upload: an append at byte `at`
reads the tail's first bytes back and fills the next part. S3 cannot read the parts of
an upload in progress, so reading an upload (to recompute its digest on a node that
has not seen every chunk) seals it first, and an append that goes back into the full
parts seals the upload and starts a new multipart upload whose parts before `at` are
copied from it on the server: the only path that writes bytes twice. A request that
fails abandons its writer, which leaves the marker as it was, so its retry continues
in the tail and sends again at most the parts the failed request sent. A small upload,
which never fills a part, is copied on the server into `data/<id>` when sealed.

`read_upload_tail` reads an upload's bytes from a start in the tail straight from the
marker's body, so a caller that rewrites an upload's last bytes (the encrypting store
re-encrypts its last block) needs no seal.

A commit seals the upload, marks it committed and links the blob to its data, unless
the digest is stored already (`replace_blob` links it in any case, with one PUT over
the blob key, then deletes the data the old link named); the data stays until the
caller aborts the upload after the blob's row commits, and is then the blob's
(`abort_upload` keeps the data a link names): if garbage collection removes the blob
before that, its delete leaves the data of an upload still kept, and the same commit
links it again. A process killed half-way
may leave a multipart upload no upload continues (invisible; S3 keeps charging for it
until it is aborted): the upload sweeper aborts those older than the upload expiry
(`abort_multipart_before`)."""

from __future__ import annotations

import io
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from dockyard.common.errors import StorageUnavailable
from dockyard.storage.base import UPLOAD_TAIL_ALIGNMENT, PositionedReader
from dockyard.storage.s3_signed import RangeNotSatisfiable, SignedReads, translated

# S3 parts must be at least 5 MiB (all but the last); a writer holds one part at a time.
# The seam promises cheap reads of an upload from the last multiple of it on (its tail).
PART_SIZE = UPLOAD_TAIL_ALIGNMENT
_SPOOL_IN_MEMORY = 1 << 20
# HEADs made at once to follow the links of blobs being deleted.
_LOOKUPS_AT_ONCE = 16
_READ_ALL_CHUNK = 1 << 20
# Links a store remembers (about 200 bytes each); past this, it forgets them all.
_LINKS_KEPT = 100_000
_STARTED = "started"
_COMMITTED = "committed"
# User metadata (x-amz-meta-*) of markers and links.
_PARTS = "dockyard-parts"
_MULTIPART = "dockyard-multipart"
_SEALED = "dockyard-sealed"
_DIGEST = "dockyard-digest"
_LOCATION = "dockyard-location"
_SIZE = "dockyard-size"
_REPLACES = "dockyard-replaces"


def make_client(
    endpoint: str | None,
    region: str,
    access_key: str | None,
    secret_key: str | None,
    path_style: bool,
    *,
    connect_timeout: float,
    read_timeout: float,
    max_attempts: int,
) -> Any:
    """A thread-safe S3 client, shared by every registry's store. A call that cannot
    reach the store (refused, timed out, dropped) or that it answers with a server error,
    after `max_attempts` tries, raises `StorageUnavailable`: a store that is down fails
    requests within seconds, as the domain's error."""
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region,
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=64,
        # S3-compatible stores do not all take the newer default CRC trailers.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    client = boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=config,
    )
    client.meta.events.register("after-call-error.s3", _unreachable)
    client.meta.events.register("after-call.s3", _server_error)
    return client


def _unreachable(exception: Exception, **_: Any) -> None:
    """botocore's hook after a call that got no answer (its retries spent)."""
    if isinstance(exception, (BotoConnectionError, HTTPClientError)):
        raise StorageUnavailable() from exception


def _server_error(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore's hook after a call answered (its retries spent): a server error is the
    store's outage, not the caller's mistake."""
    if http_response.status_code >= 500:
        raise StorageUnavailable() from ClientError(parsed, model.name)


@dataclass(frozen=True)
class _Upload:
    """An upload's state, as its `started` marker holds it: `parts` full parts in the
    multipart upload `multipart` on its data key, then `tail` bytes in the marker's
    body; once `sealed`, that many bytes in the data key's object."""

    parts: int = 0
    multipart: str | None = None
    tail: int = 0
    sealed: int | None = None

    @property
    def size(self) -> int:
        return self.sealed if self.sealed is not None else self.parts * PART_SIZE + self.tail

    @classmethod
    def of(cls, head: dict[str, Any]) -> _Upload:
        meta = head.get("Metadata", {})
        sealed = meta.get(_SEALED)
        return cls(
            parts=int(meta.get(_PARTS, 0)),
            multipart=meta.get(_MULTIPART),
            tail=head["ContentLength"],
            sealed=None if sealed is None else int(sealed),
        )

    def metadata(self) -> dict[str, str]:
        if self.sealed is not None:
            return {_SEALED: str(self.sealed)}
        meta = {_PARTS: str(self.parts)}
        if self.multipart is not None:
            meta[_MULTIPART] = self.multipart
        return meta


class S3UploadWriter:
    """Appends to an upload from byte `at`, which lies in its tail: fills a part and sends
    it as the next part of the upload's multipart upload (made with the first part);
    `close()` keeps the rest as the tail, with the state, in the `started` marker."""

    def __init__(self, store: S3BlobStore, upload_id: str, at: int, state: _Upload) -> None:
        kept = at - state.parts * PART_SIZE
        if state.sealed is not None or not 0 <= kept <= state.tail:
            raise ValueError(f"upload {upload_id} cannot continue at {at} from {state}")
        self._store = store
        self._upload_id = upload_id
        self._parts, self._multipart = state.parts, state.multipart
        self._made_multipart = False
        # Closed by close(), which every user calls.
        self._spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
        if kept:
            body = store._get(store._marker_key(upload_id, _STARTED), f"bytes=0-{kept - 1}")
            with body:
                while chunk := body.read(1 << 20):
                    self._spool.write(chunk)
        self._dirty = kept < state.tail  # bytes past `at` to drop, even if none are written

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            room = PART_SIZE - self._spool.tell()
            self._spool.write(view[:room])
            view = view[room:]
            self._dirty = True
            if self._spool.tell() == PART_SIZE:
                self._send_part()

    def _send_part(self) -> None:
        store, client = self._store, self._store._client
        key = store._data_key(self._upload_id)
        if self._multipart is None:
            self._multipart = client.create_multipart_upload(Bucket=store.bucket, Key=key)[
                "UploadId"
            ]
            self._made_multipart = True
        self._spool.seek(0)
        client.upload_part(
            Bucket=store.bucket,
            Key=key,
            UploadId=self._multipart,
            PartNumber=self._parts + 1,
            Body=self._spool,  # holds exactly this part: truncated after every part
            ContentLength=PART_SIZE,
        )
        self._parts += 1
        self._spool.seek(0)
        self._spool.truncate()

    def close(self) -> None:
        try:
            if self._dirty:
                size = self._spool.tell()
                self._spool.seek(0)
                state = _Upload(self._parts, self._multipart, size)
                self._store._put(
                    self._store._marker_key(self._upload_id, _STARTED),
                    self._spool,
                    state.metadata(),
                    size,
                )
        finally:
            self._spool.close()

    def abandon(self) -> None:
        """Leave the marker as it was: a retry at the recorded size then continues in
        the tail, sending again at most the parts this writer sent, instead of going
        back into them (which copies every part before it)."""
        self._spool.close()
        if self._made_multipart and self._multipart is not None:
            store = self._store
            with suppress(Exception):  # else the sweeper aborts it
                store._client.abort_multipart_upload(
                    Bucket=store.bucket,
                    Key=store._data_key(self._upload_id),
                    UploadId=self._multipart,
                )


class _ObjectsReader(PositionedReader):
    """Objects read as one stream, with `seek`: ranged GETs start where the reader is, and
    no GET is made before the first read."""

    def __init__(
        self,
        store: S3BlobStore,
        keys: list[tuple[str, int]],
        relocate: Callable[[], tuple[str, int]] | None = None,
    ) -> None:
        """`relocate`: where the bytes are now, if the first key named is gone (a link
        remembered from before the blob was deleted and pushed again)."""
        self._store = store
        self._keys = keys  # (key, size) in order; size -1 when unknown (a single object)
        self._relocate = relocate
        self._pos = 0
        self._body: Any = None
        self._index = 0  # object the open body belongs to
        self._offset = 0  # position of the open body within that object

    def _moved(self) -> None:
        self._drop_body()

    def _size(self) -> int:
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
        try:
            return self._open_at(self._pos)
        except FileNotFoundError:
            if self._relocate is None:
                raise
            relocate, self._relocate = self._relocate, None
            self._keys = [relocate()]
            return self._open_at(self._pos)

    def _open_at(self, start: int) -> bool:
        for index, (key, size) in enumerate(self._keys):
            if size >= 0 and start >= size:
                start -= size
                continue
            try:
                self._body = self._store._get(key, f"bytes={start}-" if start else None)
            except RangeNotSatisfiable:
                return False
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
            with translated():
                data = self._body.read(size)
            if data:
                self._pos += len(data)
                return data
            self._drop_body()
            if self._keys[self._index][1] < 0:
                return b""  # a single object of unknown size: its end is the end

    def close(self) -> None:
        self._drop_body()
        super().close()


class S3BlobStore:
    remote = True

    def __init__(
        self, client: Any, bucket: str, prefix: str, reads: SignedReads | None = None
    ) -> None:
        """`reads`: the GETs and HEADs, shared by the stores of one client (else a pool
        of this store's own)."""
        self._client = client
        self._reads = reads or SignedReads(client)
        self.bucket = bucket
        self.prefix = prefix.rstrip("/") + "/" if prefix else ""
        # Blob key -> (data key, size) of linked blobs: a link's target never changes (an
        # upload's data key is its own), and a blob deleted and pushed again, or replaced
        # (`replace_blob`, which deletes the old data), links to new data, which the old
        # target's 404 reveals. Saves the HEAD of every pull.
        self._links: dict[str, tuple[str, int]] = {}

    # -- keys -----------------------------------------------------------------------------

    def _upload_prefix(self, upload_id: str) -> str:
        return f"{self.prefix}uploads/{upload_id}/"

    def _marker_key(self, upload_id: str, marker: str) -> str:
        return self._upload_prefix(upload_id) + marker

    def _data_key(self, upload_id: str) -> str:
        return f"{self.prefix}data/{upload_id}"

    def _blob_key(self, digest: str) -> str:
        algorithm, _, encoded = digest.partition(":")
        return f"{self.prefix}blobs/{algorithm}/{encoded[:2]}/{encoded}"

    # -- S3 calls -------------------------------------------------------------------------

    def _list(self, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", ())

    def _get(self, key: str, byte_range: str | None = None) -> Any:
        return self._reads.get(self.bucket, key, byte_range)

    def _head(self, key: str) -> dict[str, Any] | None:
        return self._reads.head(self.bucket, key)

    def _size_of(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else head["ContentLength"]

    def _put(
        self, key: str, body: bytes | BinaryIO, metadata: dict[str, str], size: int | None = None
    ) -> None:
        kwargs: dict[str, Any] = {"ContentLength": size} if size is not None else {}
        self._client.put_object(Bucket=self.bucket, Key=key, Body=body, Metadata=metadata, **kwargs)

    def _delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            result = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
            if result.get("Errors"):
                raise OSError(f"could not delete {result['Errors'][0]}")

    def _started(self, upload_id: str) -> _Upload | None:
        head = self._head(self._marker_key(upload_id, _STARTED))
        return None if head is None else _Upload.of(head)

    def _seal(self, upload_id: str, state: _Upload) -> _Upload:
        """Make the upload's bytes the data key's object: complete its multipart upload
        with the tail as the last part (no byte copied), or copy a small upload's tail
        there; the `started` marker then records the size."""
        if state.sealed is not None:
            return state
        key, marker = self._data_key(upload_id), self._marker_key(upload_id, _STARTED)
        if state.parts and state.multipart is not None:
            try:
                self._complete(key, marker, state.multipart, state.parts, state.tail)
            except ClientError as error:
                # A completion that went through but whose answer never came (a time-out)
                # has left the data in place; else the upload is lost.
                if error.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                if self._size_of(key) != state.size:
                    raise KeyError(upload_id) from None
        else:
            source = {"Bucket": self.bucket, "Key": marker}
            self._client.copy_object(
                Bucket=self.bucket, Key=key, CopySource=source, MetadataDirective="REPLACE"
            )
        sealed = _Upload(sealed=state.size)
        self._put(marker, b"", sealed.metadata())
        return sealed

    def _complete(self, key: str, marker: str, multipart: str, parts: int, tail: int) -> None:
        """Complete a multipart upload of `parts` full parts, with the marker's `tail`
        bytes as its last part."""
        if tail:
            with self._get(marker) as body:
                data = body.read()
            parts += 1
            self._client.upload_part(
                Bucket=self.bucket, Key=key, UploadId=multipart, PartNumber=parts, Body=data
            )
        self._client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=key,
            UploadId=multipart,
            MultipartUpload={"Parts": self._parts_sent(key, multipart, parts)},
        )

    def _parts_sent(self, key: str, multipart: str, count: int) -> list[dict[str, Any]]:
        """The first `count` parts of a multipart upload, for its completion (a request
        that failed half-way may have sent parts after them)."""
        etags: dict[int, str] = {}
        paginator = self._client.get_paginator("list_parts")
        for page in paginator.paginate(Bucket=self.bucket, Key=key, UploadId=multipart):
            for part in page.get("Parts", ()):
                if part["PartNumber"] <= count:
                    etags[part["PartNumber"]] = part["ETag"]
        if len(etags) != count:
            raise OSError(f"{key}: {count} parts sent, {len(etags)} found")
        return [{"PartNumber": number, "ETag": etags[number]} for number in range(1, count + 1)]

    def _reopen(self, upload_id: str, state: _Upload, at: int) -> _Upload:
        """Continue at `at` an upload that is sealed, or whose full parts go past `at`: a
        new multipart upload copies the whole parts before `at` from the sealed data on
        the server, and the bytes after them become the tail."""
        state = self._seal(upload_id, state)
        if at > state.size:
            raise KeyError(upload_id)  # fewer bytes than the caller knows of
        key, parts = self._data_key(upload_id), at // PART_SIZE
        multipart = None
        if parts:
            multipart = self._client.create_multipart_upload(Bucket=self.bucket, Key=key)[
                "UploadId"
            ]
            for index in range(parts):
                self._client.upload_part_copy(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=multipart,
                    PartNumber=index + 1,
                    CopySource={"Bucket": self.bucket, "Key": key},
                    CopySourceRange=f"bytes={index * PART_SIZE}-{(index + 1) * PART_SIZE - 1}",
                )
        tail = b""
        if at > parts * PART_SIZE:
            with self._get(key, f"bytes={parts * PART_SIZE}-{at - 1}") as body:
                tail = body.read()
        reopened = _Upload(parts, multipart, len(tail))
        self._put(self._marker_key(upload_id, _STARTED), tail, reopened.metadata())
        return reopened

    def _linked(self, key: str) -> tuple[str, int] | None:
        """(the key holding a blob's bytes, their size), following a link; None if the
        blob is not stored."""
        head = self._head(key)
        if head is None:
            return None
        meta = head.get("Metadata", {})
        if _LOCATION in meta:
            return self.prefix + meta[_LOCATION], int(meta[_SIZE])
        return key, head["ContentLength"]

    # -- uploads --------------------------------------------------------------------------

    def start_upload(self, upload_id: str) -> None:
        if self._started(upload_id) is None:
            self._put(self._marker_key(upload_id, _STARTED), b"", _Upload().metadata())

    def append_upload(self, upload_id: str, at: int) -> S3UploadWriter:
        state = self._started(upload_id)
        if state is None:
            raise KeyError(upload_id)
        if state.sealed is not None or at < state.parts * PART_SIZE:
            state = self._reopen(upload_id, state, at)
        if at > state.size:
            raise KeyError(upload_id)  # fewer bytes than the caller knows of
        return S3UploadWriter(self, upload_id, at, state)

    def upload_size(self, upload_id: str) -> int | None:
        state = self._started(upload_id)
        return None if state is None else state.size

    def read_upload(self, upload_id: str) -> BinaryIO:
        state = self._started(upload_id)
        if state is None:
            raise KeyError(upload_id)
        if state.parts:
            state = self._seal(upload_id, state)
        if state.sealed is not None:
            keys = [(self._data_key(upload_id), state.sealed)]
        else:
            keys = [(self._marker_key(upload_id, _STARTED), state.tail)]
        reader = _ObjectsReader(self, keys)
        return io.BufferedReader(reader, buffer_size=1 << 20)  # type: ignore[return-value]

    def read_upload_tail(self, upload_id: str, start: int, limit: int) -> bytes:
        """From the `started` marker's body when `start` lies in the tail; else from the
        data key's object, sealing the upload first."""
        state = self._started(upload_id)
        if state is None:
            raise KeyError(upload_id)
        end = min(start + limit, state.size)
        if start >= end:
            return b""
        if state.sealed is None and start >= state.parts * PART_SIZE:
            key = self._marker_key(upload_id, _STARTED)
            offset = start - state.parts * PART_SIZE
        else:
            self._seal(upload_id, state)
            key, offset = self._data_key(upload_id), start
        with self._get(key, f"bytes={offset}-{offset + end - start - 1}") as body:
            return body.read()

    def _commit_marker(self, upload_id: str, digest: str, replaces: str | None = None) -> int:
        """Seal the upload and mark it committed (unless a commit did); its size.
        `replaces`: the data key of the blob's bytes it is to replace, which its abort
        removes unless the blob still links to it."""
        committed = self._marker_key(upload_id, _COMMITTED)
        head = self._head(committed)
        if head is not None:
            return int(head["Metadata"][_SEALED])
        state = self._started(upload_id)
        if state is None:
            raise KeyError(upload_id)
        size = self._seal(upload_id, state).size
        meta = {_SEALED: str(size), _DIGEST: digest}
        if replaces is not None:
            meta[_REPLACES] = replaces.removeprefix(self.prefix)
        self._put(committed, b"", meta)
        self._delete_keys([self._marker_key(upload_id, _STARTED)])
        return size

    def _link_to_data(self, upload_id: str, digest: str, size: int) -> None:
        """Write the blob key as a link to the upload's data (over whatever it held)."""
        data = self._data_key(upload_id)
        stored = self._size_of(data)
        if stored != size:
            raise OSError(f"{data}: holds {stored} bytes, expected {size}")
        location = data.removeprefix(self.prefix)
        self._put(self._blob_key(digest), b"", {_LOCATION: location, _SIZE: str(size)})

    def commit_upload(self, upload_id: str, digest: str) -> int:
        size = self._commit_marker(upload_id, digest)
        if self._linked(self._blob_key(digest)) is None:
            self._link_to_data(upload_id, digest, size)
        return size

    def replace_blob(self, upload_id: str, digest: str) -> int:
        """One PUT of the link over the blob key (S3 replaces an object atomically), then
        the old data goes, unless an upload still keeps it. The committed marker names
        that data first: if this process dies between the PUT and the delete, the
        upload's abort (the sweeper's, after a kill) removes it, so that no store that
        remembers the old link reads it for longer (it then finds the new one on its
        404)."""
        target = self._blob_key(digest)
        data = self._data_key(upload_id)
        old = [key for key in self._doomed(digest) if key not in (target, data)]
        size = self._commit_marker(upload_id, digest, old[0] if old else None)
        self._link_to_data(upload_id, digest, size)
        self._links.pop(target, None)
        self._delete_keys(old)
        return size

    def put_blob(self, upload_id: str, digest: str, data: bytes) -> int:
        """One PUT of the blob key: S3 shows an object only once it is complete, and a
        PUT over a stored copy writes the same bytes. Nothing of the upload is kept (the
        caller still holds `data` to publish again)."""
        self._client.put_object(
            Bucket=self.bucket, Key=self._blob_key(digest), Body=data, ContentLength=len(data)
        )
        return len(data)

    def abort_upload(self, upload_id: str) -> None:
        started = self._started(upload_id)
        committed = self._head(self._marker_key(upload_id, _COMMITTED))
        data = self._data_key(upload_id)
        keys = [item["Key"] for item in self._list(self._upload_prefix(upload_id))]
        if committed is not None:  # sealed; `started` too only after a crash mid-commit
            meta = committed.get("Metadata", {})
            linked = self._linked(self._blob_key(meta[_DIGEST])) if _DIGEST in meta else None
            if _DIGEST in meta and linked != (data, int(meta.get(_SEALED, -1))):
                keys.insert(0, data)  # published by another upload, or removed since
            if _REPLACES in meta and (linked is None or linked[0] != self.prefix + meta[_REPLACES]):
                keys.insert(0, self.prefix + meta[_REPLACES])  # a replace that died half-way
        elif started is not None:
            if started.multipart is not None and started.sealed is None:
                with suppress(ClientError):  # completed or aborted already
                    self._client.abort_multipart_upload(
                        Bucket=self.bucket, Key=data, UploadId=started.multipart
                    )
            keys.insert(0, data)
        # The markers last: an upload half-removed by a crash is still listed, and swept.
        keys.sort(key=lambda key: key.endswith((_STARTED, _COMMITTED)))
        self._delete_keys(keys)

    def abort_multipart_before(self, cutoff: float) -> int:
        """Abort this store's multipart uploads started before `cutoff` (epoch s) that no
        upload continues: requests and commits killed half-way. Returns how many."""
        aborted = 0
        data = f"{self.prefix}data/"
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Uploads", ()):
                if item["Initiated"].timestamp() >= cutoff:
                    continue
                key = item["Key"]
                if key.startswith(data):
                    state = self._started(key.removeprefix(data))
                    if state is not None and state.multipart == item["UploadId"]:
                        continue  # the upload's own: its session's expiry removes it
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=item["UploadId"]
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
        key = self._blob_key(digest)
        located = self._links.get(key) or self._link(key)

        def relocate() -> tuple[str, int]:
            self._links.pop(key, None)
            found = self._link(key)
            if found is None:
                raise FileNotFoundError(digest)
            return found

        # Unbuffered: callers read in large chunks, which `_ObjectsReader.read` hands over
        # as the body returns them.
        return _ObjectsReader(self, [located], relocate)  # type: ignore[return-value]

    def _link(self, key: str) -> tuple[str, int]:
        """`_linked`, remembering a link for the next `open`."""
        located = self._linked(key)
        if located is None:
            raise FileNotFoundError(key)
        if located[0] != key:
            if len(self._links) >= _LINKS_KEPT:
                self._links.clear()
            self._links[key] = located
        return located

    def local_path(self, digest: str) -> Path | None:
        return None

    def presigned_url(self, digest: str, expires_in: int = 600) -> str:
        """A URL that lets its holder GET the blob for `expires_in` seconds (signed offline,
        after one HEAD that follows the blob's link)."""
        located = self._linked(self._blob_key(digest))
        key = located[0] if located is not None else self._blob_key(digest)
        return self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_in
        )

    def stat(self, digest: str) -> int | None:
        located = self._linked(self._blob_key(digest))
        return None if located is None else located[1]

    def delete(self, *digests: str) -> None:
        """Remove the blobs and the data their links name, except the data of an upload
        still kept (committed, not yet aborted: its commit may link it again). The links
        are followed `_LOOKUPS_AT_ONCE` at a time: garbage collection deletes a batch
        while it holds the writers' lock."""
        for digest in digests:
            self._links.pop(self._blob_key(digest), None)
        with ThreadPoolExecutor(_LOOKUPS_AT_ONCE) as pool:
            doomed = [key for keys in pool.map(self._doomed, digests) for key in keys]
        self._delete_keys(doomed)

    def _doomed(self, digest: str) -> list[str]:
        """The keys deleting a blob removes: its key, and the data it links to unless an
        upload still keeps that."""
        key = self._blob_key(digest)
        located = self._linked(key)
        if located is None:
            return []
        if located[0] == key:
            return [key]
        upload_id = located[0].removeprefix(f"{self.prefix}data/")
        if self._head(self._marker_key(upload_id, _COMMITTED)) is not None:
            return [key]
        return [key, located[0]]

    def blob_digests(self) -> Iterator[str]:
        prefix = f"{self.prefix}blobs/"
        for item in self._list(prefix):
            algorithm, _, rest = item["Key"][len(prefix) :].partition("/")
            yield f"{algorithm}:{rest.rpartition('/')[2]}"

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
