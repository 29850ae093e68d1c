"""RPM's package database in its SQLite form (RHEL/UBI 9, Rocky and Alma 9, Fedora):
`/var/lib/rpm/rpmdb.sqlite` or `/usr/lib/sysimage/rpm/rpmdb.sqlite`, its `Packages`
table of RPM header blobs. Opened from memory (`sqlite3`'s deserialize), never from a
file. BerkeleyDB (`Packages`) and NDB databases of older releases are not read."""

from __future__ import annotations

import sqlite3
import struct
import tarfile
from typing import BinaryIO

from dockyard.sbom.readers.installed import MAX_DATABASE, Installed, read_bounded

DATABASES = frozenset({"var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"})
NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
INT32, STRING = 4, 6
_WANTED = frozenset({NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM})


def wants(path: str, member: tarfile.TarInfo) -> bool:
    return path in DATABASES


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    raw = read_bounded(data, size, MAX_DATABASE)
    if raw is None:
        return None
    database = sqlite3.connect(":memory:")
    try:
        database.deserialize(_without_wal(raw))
        blobs = [row[0] for row in database.execute("SELECT blob FROM Packages")]
    finally:
        database.close()
    packages = []
    for blob in blobs:
        package = installed(header_tags(bytes(blob)))
        if package is not None:
            packages.append(package)
    return packages


def _without_wal(raw: bytes) -> bytes:
    """The database marked as a rollback-journal one: rpm keeps it in WAL mode, which
    SQLite cannot open from memory (bytes 18 and 19 of the header are the file format's
    write and read versions, 2 for WAL). Whatever the WAL file held is not in the image
    layer's copy anyway, as rpm checkpoints it when it closes the database."""
    if raw[18:20] == b"\x02\x02":
        return raw[:18] + b"\x01\x01" + raw[20:]
    return raw


def header_tags(blob: bytes) -> dict[int, str | int]:
    """The tags read here from an RPM header as the database keeps it (no magic): the
    index count and data size, 16-byte entries (tag, type, offset, count), the data."""
    count, size = struct.unpack_from(">ii", blob, 0)
    data_start = 8 + 16 * count
    if count < 0 or size < 0 or data_start + size > len(blob):
        raise ValueError("an RPM header's index runs past its blob")
    tags: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, _ = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag not in _WANTED or not 0 <= offset < size:
            continue
        at = data_start + offset
        if kind == STRING:
            end = blob.index(b"\0", at)
            tags[tag] = blob[at:end].decode("utf-8", "replace")
        elif kind == INT32:
            tags[tag] = struct.unpack_from(">i", blob, at)[0]
    return tags


def installed(tags: dict[int, str | int]) -> Installed | None:
    name, version, release = tags.get(NAME), tags.get(VERSION), tags.get(RELEASE)
    if not isinstance(name, str) or not isinstance(version, str) or name == "gpg-pubkey":
        return None
    full = f"{version}-{release}" if isinstance(release, str) else version
    epoch = tags.get(EPOCH)
    epoch_text = str(epoch) if isinstance(epoch, int) else None
    arch = tags.get(ARCH)
    source = None
    sourcerpm = tags.get(SOURCERPM)
    if isinstance(sourcerpm, str) and sourcerpm.endswith(".src.rpm"):
        source = sourcerpm.removesuffix(".src.rpm").rsplit("-", 2)[0]
    return Installed(
        name,
        f"{epoch_text}:{full}" if epoch_text else full,
        arch if isinstance(arch, str) else None,
        source,
        epoch=epoch_text,
    )
