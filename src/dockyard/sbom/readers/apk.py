"""Alpine's (and Wolfi's) package database: `/lib/apk/db/installed`
(`/usr/lib/apk/db/installed` where `/lib` is merged into `/usr`): stanzas of `X:value`
lines, `P` the name, `V` the version, `A` the architecture, `o` the origin (source)."""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from dockyard.sbom.readers.installed import MAX_DATABASE, Installed, read_bounded

INSTALLED = frozenset({"lib/apk/db/installed", "usr/lib/apk/db/installed"})


def wants(path: str, member: tarfile.TarInfo) -> bool:
    return path in INSTALLED


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    raw = read_bounded(data, size, MAX_DATABASE)
    if raw is None:
        return None
    packages = []
    for block in raw.decode("utf-8", "replace").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1 and key not in fields:
                fields[key] = value
        if fields.get("P") and fields.get("V"):
            version = fields["V"]
            source = fields.get("o") or fields["P"]
            packages.append(Installed(fields["P"], version, fields.get("A"), source, version))
    return packages
