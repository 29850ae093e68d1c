"""Java archives (`.jar`, `.war`, `.ear`): Maven's `META-INF/maven/<group>/<artifact>/
pom.properties` in each, else `META-INF/MANIFEST.MF`'s implementation or bundle title
and version; jars inside them (Spring Boot's `BOOT-INF/lib`, `WEB-INF/lib`) are read
too, from memory."""

from __future__ import annotations

import io
import tarfile
import zipfile
from typing import BinaryIO

from dockyard.sbom.readers.installed import MAX_ARCHIVE, Installed, read_bounded

ARCHIVES = (".jar", ".war", ".ear")
POM_PROPERTIES = "/pom.properties"
MANIFEST = "META-INF/MANIFEST.MF"
MAX_DEPTH = 3  # jars inside jars inside jars


def wants(path: str, member: tarfile.TarInfo) -> bool:
    return path.endswith(ARCHIVES)


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    raw = read_bounded(data, size, MAX_ARCHIVE)
    if raw is None:
        return None
    return _archive(raw, None, 1) or None


def _archive(raw: bytes, member: str | None, depth: int) -> list[Installed]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        return []
    found: list[Installed] = []
    names = archive.namelist()
    for name in names:
        if name.startswith("META-INF/maven/") and name.endswith(POM_PROPERTIES):
            package = _pom_properties(archive.read(name).decode("utf-8", "replace"), member)
            if package is not None:
                found.append(package)
    if not found and MANIFEST in names:
        package = _manifest(archive.read(MANIFEST).decode("utf-8", "replace"), member)
        if package is not None:
            found.append(package)
    if depth < MAX_DEPTH:
        for name in names:
            if name.endswith(ARCHIVES) and archive.getinfo(name).file_size <= MAX_ARCHIVE:
                inner = f"{member}!/{name}" if member else name
                found.extend(_archive(archive.read(name), inner, depth + 1))
    return found


def _pom_properties(text: str, member: str | None) -> Installed | None:
    fields = _properties(text)
    group, artifact = fields.get("groupId"), fields.get("artifactId")
    version = fields.get("version")
    if not group or not artifact or not version:
        return None
    return Installed(artifact, version, namespace=group, member=member)


def _manifest(text: str, member: str | None) -> Installed | None:
    fields = _properties(text.replace("\r\n", "\n").replace("\n ", ""), separator=":")
    title = fields.get("Implementation-Title") or fields.get("Bundle-SymbolicName")
    version = fields.get("Implementation-Version") or fields.get("Bundle-Version")
    if not title or not version:
        return None
    group = fields.get("Implementation-Vendor-Id")
    return Installed(title.split(";")[0].strip(), version, namespace=group, member=member)


def _properties(text: str, separator: str = "=") -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("#") or separator not in line:
            continue
        key, _, value = line.partition(separator)
        fields[key.strip()] = value.strip()
    return fields
