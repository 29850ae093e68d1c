"""Python distributions: `*.dist-info/METADATA` (wheels, pip), `*.egg-info/PKG-INFO`
(setuptools' eggs) and `*.egg-info` files (distutils'), wherever they stand
(site-packages, dist-packages, a virtualenv): their `Name:` and `Version:` headers."""

from __future__ import annotations

import re
import tarfile
from typing import BinaryIO

from dockyard.sbom.readers.installed import MAX_METADATA, Installed, read_bounded

_SEPARATORS = re.compile(r"[-_.]+")


def wants(path: str, member: tarfile.TarInfo) -> bool:
    if path.endswith("/METADATA"):
        return path[: -len("/METADATA")].endswith(".dist-info")
    if path.endswith("/PKG-INFO"):
        return path[: -len("/PKG-INFO")].endswith(".egg-info")
    return path.endswith(".egg-info")  # distutils wrote PKG-INFO as this one file


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    raw = read_bounded(data, size, MAX_METADATA)
    if raw is None:
        return None
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break  # the description follows the headers
        key, sep, value = line.partition(":")
        if sep and key in ("Name", "Version") and key not in headers:
            headers[key] = value.strip()
    if not headers.get("Name") or not headers.get("Version"):
        return None
    return [Installed(normalized_name(headers["Name"]), headers["Version"])]


def normalized_name(name: str) -> str:
    """PEP 503's normal form, the one OSV's PyPI records use."""
    return _SEPARATORS.sub("-", name).lower()
