"""`Installed`: a package as a package database or manifest records it, before the
distribution around it is known (the ecosystem and the package URL are made from both,
in `sbom/inventory.py`); and reading a file a reader wants, within a bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

# The most a reader takes of one file into memory: package databases (dpkg's status of
# a large image is a few MiB, an rpmdb.sqlite tens) and archives (a jar) are read whole;
# bigger files are left out rather than held.
MAX_DATABASE = 256 << 20
MAX_METADATA = 4 << 20
MAX_ARCHIVE = 128 << 20


@dataclass(frozen=True)
class Installed:
    name: str
    version: str
    arch: str | None = None
    # The source package, where the database names one (dpkg's Source, apk's origin,
    # rpm's source rpm): OSV names distribution packages by their source.
    source: str | None = None
    source_version: str | None = None
    epoch: str | None = None  # rpm's, apart: its package URL carries it as a qualifier
    namespace: str | None = None  # Maven's group
    member: str | None = None  # where inside the file (a jar within a jar), if not the file


def read_bounded(data: BinaryIO, size: int, limit: int) -> bytes | None:
    """The file's bytes, or None when it is bigger than `limit`."""
    if size > limit:
        return None
    return data.read(size)
