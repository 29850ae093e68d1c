"""Go binaries: the build information the Go toolchain (1.18 and later) writes into
every binary it links, found by its magic `\\xff Go buildinf:` in a stream of the
executable, without parsing the ELF file: the module versions follow the 32-byte
header inline (older toolchains wrote pointers instead, which need the file's
sections: such binaries are left out)."""

from __future__ import annotations

import tarfile
from typing import BinaryIO

from dockyard.sbom.readers.installed import Installed

MAGIC = b"\xff Go buildinf:"
ELF = b"\x7fELF"
HEADER = 32
FLAG_INLINE = 0x2
CHUNK = 1 << 20
# The build information is a few KiB; read this much after the magic at most.
MAX_INFO = 1 << 20
# Modules' build information starts and ends with 16 bytes of framing.
FRAME = 16


def wants(path: str, member: tarfile.TarInfo) -> bool:
    return bool(member.mode & 0o111) and member.size > HEADER


def read(path: str, data: BinaryIO, size: int) -> list[Installed] | None:
    head = data.read(CHUNK)
    if not head.startswith(ELF):
        return None
    info = _build_info(data, head)
    return None if info is None else modules(*info)


def _build_info(data: BinaryIO, first: bytes) -> tuple[str, str] | None:
    """(Go version, module information) from the stream, or None."""
    window, offset = first, 0  # `offset`: where `window` starts in the file
    while True:
        at = window.find(MAGIC)
        while at >= 0 and (offset + at) % 16:
            at = window.find(MAGIC, at + 1)
        if at >= 0:
            rest = window[at:]
            while len(rest) < MAX_INFO:
                more = data.read(CHUNK)
                if not more:
                    break
                rest += more
            return _inline(rest[:MAX_INFO])
        more = data.read(CHUNK)
        if not more:
            return None
        keep = window[-(len(MAGIC) - 1) :]
        offset += len(window) - len(keep)
        window = keep + more


def _inline(info: bytes) -> tuple[str, str] | None:
    if len(info) < HEADER or not info[15] & FLAG_INLINE:
        return None
    version, at = _string(info, HEADER)
    modinfo, _ = _string(info, at)
    if len(modinfo) > 2 * FRAME:
        modinfo = modinfo[FRAME:-FRAME]
    return version, modinfo


def _string(data: bytes, at: int) -> tuple[str, int]:
    """A varint-length-prefixed string at `at`, and where the next begins."""
    length = shift = 0
    while at < len(data):
        byte = data[at]
        at += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return data[at : at + length].decode("utf-8", "replace"), at + length


def modules(go_version: str, modinfo: str) -> list[Installed]:
    """The main module (when built at a version), its dependencies (as replaced), and
    the standard library at the toolchain's version, named `stdlib` as OSV does."""
    found: list[Installed] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            if fields[0] == "mod" and fields[2] == "(devel)":
                continue
            found.append(Installed(fields[1], _semver(fields[2])))
        elif fields[0] == "=>" and len(fields) >= 3 and found and fields[2]:
            found[-1] = Installed(fields[1], _semver(fields[2]))
    toolchain = go_version.split()[0] if go_version.split() else ""
    if toolchain.startswith("go"):
        found.append(Installed("stdlib", toolchain[2:]))
    return found


def _semver(version: str) -> str:
    """Go's `v1.2.3` as OSV's Go records write versions: without the `v`."""
    return version.removeprefix("v")
