"""The distribution an image is built on: `/etc/os-release` (or `/usr/lib/os-release`)
and `/etc/alpine-release`, which say which release a package database belongs to."""

from __future__ import annotations

import shlex
import tarfile
from typing import BinaryIO

from dockyard.sbom.readers.installed import MAX_METADATA, read_bounded

OS_RELEASE = frozenset({"etc/os-release", "usr/lib/os-release"})
ALPINE_RELEASE = "etc/alpine-release"


def wants(path: str, member: tarfile.TarInfo) -> bool:
    return path in OS_RELEASE or path == ALPINE_RELEASE


def read(path: str, data: BinaryIO, size: int) -> dict[str, str] | None:
    raw = read_bounded(data, size, MAX_METADATA)
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace")
    if path == ALPINE_RELEASE:
        return {"ALPINE_RELEASE": text.strip()}
    return os_release(text)


def os_release(text: str) -> dict[str, str]:
    """os-release's `KEY=value` lines, values unquoted as a shell would."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            continue
        fields[key] = " ".join(words)
    return fields
