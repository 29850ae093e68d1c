"""Debian's package database: `/var/lib/dpkg/status` (RFC 822 stanzas; only packages
`install ok installed`) and distroless images' `/var/lib/dpkg/status.d/<package>`."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Iterator
from typing import BinaryIO

from dockyard.sbom.readers.installed import MAX_DATABASE, Installed, read_bounded

STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d/"
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")


def wants(path: str, member: tarfile.TarInfo) -> bool:
    if path == STATUS:
        return True
    return (
        path.startswith(STATUS_D)
        and not path.endswith(".md5sums")
        and "/" not in path[len(STATUS_D) :]
    )


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    raw = read_bounded(data, size, MAX_DATABASE)
    if raw is None:
        return None
    packages = []
    for stanza in stanzas(raw.decode("utf-8", "replace")):
        name, version = stanza.get("Package"), stanza.get("Version")
        if not name or not version:
            continue
        if "Status" in stanza and stanza["Status"].split()[-1:] != ["installed"]:
            continue
        source, source_version = name, version
        found = _SOURCE.match(stanza.get("Source", ""))
        if found:
            source = found.group(1)
            source_version = found.group(2) or version
        packages.append(
            Installed(name, version, stanza.get("Architecture"), source, source_version)
        )
    return packages


def stanzas(text: str) -> Iterator[dict[str, str]]:
    """Each stanza's fields (continuation lines dropped: no field read here has any)."""
    stanza: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if stanza:
                yield stanza
            stanza = {}
        elif not line[0].isspace():
            key, _, value = line.partition(":")
            stanza[key.strip()] = value.strip()
    if stanza:
        yield stanza
