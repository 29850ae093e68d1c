"""npm packages: `node_modules/<name>/package.json` and
`node_modules/@<scope>/<name>/package.json`, nested `node_modules` included (a
package's own `package.json` elsewhere is a project, not an installed package)."""

from __future__ import annotations

import tarfile
from typing import BinaryIO

import orjson

from dockyard.sbom.readers.installed import MAX_METADATA, Installed, read_bounded


def wants(path: str, member: tarfile.TarInfo) -> bool:
    if not path.endswith("/package.json"):
        return False
    parts = path.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules":
        return not parts[-2].startswith("@")
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    raw = read_bounded(data, size, MAX_METADATA)
    if raw is None:
        return None
    manifest = orjson.loads(raw)
    if not isinstance(manifest, dict):
        return None
    name, version = manifest.get("name"), manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    return [Installed(name, version)]
