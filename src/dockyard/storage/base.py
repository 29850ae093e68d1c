"""The `BlobStore` seam. `tests/contract/test_blobstore.py` is the definition of a correct
backend: a new backend is done when that suite passes against it."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol

# The bytes of an upload in progress that every backend reads back cheaply: those at or
# after the last multiple of this at or below its size. S3 keeps an upload as full
# parts of this size, which it cannot read before the upload is sealed, then the rest
# (the tail) in an object of its own (`storage/s3.py`). Formats that rewrite an
# upload's last bytes align to it (`storage/encrypted.py`).
UPLOAD_TAIL_ALIGNMENT = 8 << 20


class UploadWriter(Protocol):
    """Appends to an upload in progress. Bytes written are durable after `close()`."""

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...
    def abandon(self) -> None:
        """End the writer of a request that failed, instead of `close()`: the upload may
        keep what it was given or stay as it was (the retry continues at the size the
        caller recorded, which drops the rest either way), whichever costs the backend
        less to continue."""
        ...


class BlobStore(Protocol):
    """Content-addressed bytes of one registry, and the uploads that become them."""

    # True when calls are network round trips (S3): callers on the event loop run them in
    # a thread. False for local files, whose calls are fast enough to make inline.
    remote: bool

    def start_upload(self, upload_id: str) -> None:
        """Make the upload's (empty) data; idempotent: a started upload keeps its bytes
        (an upload's first chunk starts it again after a request that failed)."""
        ...

    def append_upload(self, upload_id: str, at: int) -> UploadWriter:
        """A writer that continues the upload at byte `at`, dropping anything stored past
        it (the remains of a request that failed half-way). KeyError if unknown."""
        ...

    def upload_size(self, upload_id: str) -> int | None: ...
    def read_upload(self, upload_id: str) -> BinaryIO:
        """The partial data of an upload; KeyError if unknown."""
        ...

    def read_upload_tail(self, upload_id: str, start: int, limit: int) -> bytes:
        """Up to `limit` bytes of an upload in progress from byte `start` (fewer at its
        end, none past it); KeyError if unknown. Cheap when `start` lies at or after the
        last multiple of `UPLOAD_TAIL_ALIGNMENT` at or below the upload's size: S3 then
        reads its tail; an earlier start seals the upload first, as `read_upload` does
        (its next append copies its parts). For formats that rewrite an upload's last
        bytes on the next append (`storage/encrypted.py` re-encrypts its last block)."""
        ...

    def commit_upload(self, upload_id: str, digest: str) -> int:
        """Publish a finished upload under `digest` (already verified by the caller),
        atomically and durably; returns its size. Publishing a digest that is already
        stored keeps the stored copy. KeyError if the upload is unknown.

        The upload can no longer be appended to or read, but its data is kept until
        `abort_upload`, and committing again publishes it again: the caller removes it
        only once the blob's row has committed, because garbage collection may remove
        the published bytes of a digest that has no row yet."""
        ...

    def put_blob(self, upload_id: str, digest: str, data: bytes) -> int:
        """Publish small bytes the caller holds and has verified under `digest`, in as few
        calls as the backend allows (S3: one PUT), atomically and durably; returns the
        size. Anything the backend keeps of them belongs to `upload_id` until
        `abort_upload`; calling again publishes again (after garbage collection removed
        the bytes of a digest that had no row yet, as with `commit_upload`)."""
        ...

    def replace_blob(self, upload_id: str, digest: str) -> int:
        """Publish a finished upload under `digest` in place of the stored copy, if any:
        atomically (whoever opens the blob gets the old bytes or the new, never neither)
        and durably; the old bytes go (a reader that has them open may go on reading
        them, or meet the new ones). For rewriting how a blob is stored (re-encryption),
        never for bytes of another content. Returns the size; KeyError if the upload is
        unknown. The caller then aborts the upload, as after `commit_upload`."""
        ...

    def abort_upload(self, upload_id: str) -> None:
        """Remove the upload's data, committed or not; idempotent."""
        ...

    def upload_ids(self) -> Iterator[tuple[str, float]]:
        """Uploads with data present (committed ones too, until aborted), with their
        last-modified time (epoch s)."""
        ...

    def open(self, digest: str) -> BinaryIO: ...
    def local_path(self, digest: str) -> Path | None:
        """Where the blob is on this machine's disk, if the store keeps local files (for
        checks of the files themselves, as the garbage collector's tests make)."""
        ...

    def stat(self, digest: str) -> int | None: ...
    def delete(self, *digests: str) -> None:
        """Remove these blobs (missing ones are no error), in as few calls as the backend
        allows: garbage collection deletes in batches while holding the writers' lock."""
        ...

    def blob_digests(self) -> Iterator[str]:
        """The digest of every stored blob, in no particular order: for housekeeping that
        visits every blob (converting how they are stored), never on a request's path."""
        ...

    def check(self) -> None:
        """Raise if the store cannot be written right now (readiness)."""
        ...


class PositionedReader(io.RawIOBase):
    """A blob reader that keeps its own position: `seek` only moves it (no I/O; the next
    `read` fetches from there), as the stores' readers over remote objects or encrypted
    blocks need. Subclasses give `read`, `_size()` (for `SEEK_END`) and, if a move must
    drop something, `_moved()`."""

    _pos = 0

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
            offset += self._size()
        if offset < 0:
            raise ValueError("negative seek position")
        if offset != self._pos:
            self._moved()
        self._pos = offset
        return offset

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _size(self) -> int:
        raise NotImplementedError

    def _moved(self) -> None:
        """Called before the position changes."""
