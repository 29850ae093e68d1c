"""Blobs as files: `blobs/<alg>/<2 hex>/<hex>`, published from an upload's file after
fsync by a hard link (atomic), so a blob file either is complete or does not exist.

Commit first renames `uploads/<id>` to `uploads/<id>.kept`, out of reach of writers and
readers of the upload, and keeps it until `abort_upload`: if garbage collection removes
the blob before its row commits, the same commit can publish it again."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

# Suffix of a committed upload's file, kept until `abort_upload` (see the module's doc).
_KEPT = ".kept"


class FileUploadWriter:
    def __init__(self, path: Path, at: int) -> None:
        self._fd = os.open(path, os.O_WRONLY)
        self._at = at
        self._written = 0
        os.ftruncate(self._fd, at)
        os.lseek(self._fd, at, os.SEEK_SET)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            self._written += written
            view = view[written:]

    def close(self) -> None:
        # Start writing this chunk back to disk now (Linux begins write-back of dirty
        # pages on DONTNEED), so the fsync at commit has little left to wait for. Only
        # this chunk's range: DONTNEED also drops the pages already clean, and the
        # earlier chunks' would then be read from disk by the first pull.
        if self._written:
            os.posix_fadvise(self._fd, self._at, self._written, os.POSIX_FADV_DONTNEED)
        os.close(self._fd)

    def abandon(self) -> None:
        """Keep what was written: the next append truncates the file where it begins."""
        self.close()


class FilesystemBlobStore:
    remote = False

    def __init__(self, root: Path) -> None:
        self.root = root
        self._uploads = root / "uploads"
        self._blobs = root / "blobs"
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._blobs.mkdir(parents=True, exist_ok=True)

    def _upload_path(self, upload_id: str) -> Path:
        return self._uploads / upload_id

    def _blob_path(self, digest: str) -> Path:
        algorithm, _, encoded = digest.partition(":")
        return self._blobs / algorithm / encoded[:2] / encoded

    def start_upload(self, upload_id: str) -> None:
        os.close(os.open(self._upload_path(upload_id), os.O_WRONLY | os.O_CREAT))

    def append_upload(self, upload_id: str, at: int) -> FileUploadWriter:
        try:
            return FileUploadWriter(self._upload_path(upload_id), at)
        except FileNotFoundError:
            raise KeyError(upload_id) from None

    def upload_size(self, upload_id: str) -> int | None:
        try:
            return self._upload_path(upload_id).stat().st_size
        except FileNotFoundError:
            return None

    def read_upload(self, upload_id: str) -> BinaryIO:
        try:
            return open(self._upload_path(upload_id), "rb")
        except FileNotFoundError:
            raise KeyError(upload_id) from None

    def read_upload_tail(self, upload_id: str, start: int, limit: int) -> bytes:
        try:
            fd = os.open(self._upload_path(upload_id), os.O_RDONLY)
        except FileNotFoundError:
            raise KeyError(upload_id) from None
        try:
            parts = []
            while limit > 0 and (data := os.pread(fd, limit, start)):
                parts.append(data)
                start += len(data)
                limit -= len(data)
            return b"".join(parts)
        finally:
            os.close(fd)

    def _kept_path(self, upload_id: str) -> Path:
        return self._uploads / f"{upload_id}{_KEPT}"

    def _keep(self, upload_id: str) -> tuple[Path, int]:
        """Move the upload out of reach of writers and readers (unless a commit did) and
        fsync it: its kept file, and its size."""
        source = self._kept_path(upload_id)
        with suppress(FileNotFoundError):
            os.replace(self._upload_path(upload_id), source)
        try:
            fd = os.open(source, os.O_RDONLY)
        except FileNotFoundError:
            raise KeyError(upload_id) from None
        try:
            os.fsync(fd)
            return source, os.fstat(fd).st_size
        finally:
            os.close(fd)

    def commit_upload(self, upload_id: str, digest: str) -> int:
        source, size = self._keep(upload_id)
        self._link(source, self._blob_path(digest))
        return size

    def replace_blob(self, upload_id: str, digest: str) -> int:
        """The kept file becomes the blob by a rename over it (atomic): nothing is left
        of the upload to abort."""
        source, size = self._keep(upload_id)
        target = self._blob_path(digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        _fsync_dir(target.parent)
        return size

    def put_blob(self, upload_id: str, digest: str, data: bytes) -> int:
        """Write the bytes as the upload's kept file, then publish it as a commit does."""
        source = self._kept_path(upload_id)
        fd = os.open(source, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        self._link(source, self._blob_path(digest))
        return len(data)

    def _link(self, source: Path, target: Path) -> None:
        """Publish the fsync'd `source` as `target` by a hard link (atomic), unless the
        digest is stored already."""
        if target.exists():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        with suppress(FileExistsError):  # another upload of the same digest got there first
            os.link(source, target)
        _fsync_dir(target.parent)

    def abort_upload(self, upload_id: str) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)
        self._kept_path(upload_id).unlink(missing_ok=True)

    def upload_ids(self) -> Iterator[tuple[str, float]]:
        for entry in os.scandir(self._uploads):
            try:
                yield entry.name.removesuffix(_KEPT), entry.stat().st_mtime
            except FileNotFoundError:
                continue

    def open(self, digest: str) -> BinaryIO:
        return open(self._blob_path(digest), "rb")

    def local_path(self, digest: str) -> Path | None:
        return self._blob_path(digest)

    def stat(self, digest: str) -> int | None:
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, *digests: str) -> None:
        for digest in digests:
            self._blob_path(digest).unlink(missing_ok=True)

    def blob_digests(self) -> Iterator[str]:
        for algorithm in os.scandir(self._blobs):
            for fanout in os.scandir(algorithm.path):
                for entry in os.scandir(fanout.path):
                    yield f"{algorithm.name}:{entry.name}"

    def check(self) -> None:
        probe = self._uploads / f".ready-{os.getpid()}-{time.monotonic_ns()}"
        probe.write_bytes(b"")
        probe.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
