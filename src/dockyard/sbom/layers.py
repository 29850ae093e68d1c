"""An image layer as a stream of tar entries: the blob decompressed on the fly (gzip,
zstd or none, told by the bytes themselves, as the media types of Docker's and OCI's
layers do not always say), read front to back once. Never unpacks to disk and never
holds a layer in memory: only the entries a reader asks for are read, by the reader."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# How much of a compressed layer is read at a time.
CHUNK = 1 << 20


class _Prefixed(io.RawIOBase):
    """`head` (bytes already read to sniff the format) followed by the rest of `rest`."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def decompressed(blob: BinaryIO) -> BinaryIO:
    """The layer's tar bytes, decompressed as they are read."""
    head = blob.read(4)
    raw = io.BufferedReader(_Prefixed(head, blob), CHUNK)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if head.startswith(ZSTD_MAGIC):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        return io.BufferedReader(reader, CHUNK)  # type: ignore[arg-type]
    return raw  # type: ignore[return-value]


def entries(blob: BinaryIO) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    """Each tar entry of the layer in order, with the archive to `extractfile` it from
    (only while it is the current entry: the stream does not go back)."""
    with tarfile.open(fileobj=decompressed(blob), mode="r|") as tar:
        for member in tar:
            yield member, tar


def normalized(name: str) -> str:
    """A tar entry's name as a path from the image's root, without `./` or `/` before
    it or `/` after it: `./usr/lib/` -> `usr/lib`."""
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")
