"""The merged filesystem of an image, as far as package inventories care: its layers
applied base first, each file a reader wants read as its entry streams by, and the
OCI rules of layering kept: a later layer's file replaces an earlier one's (a file
replaces a whole directory), `.wh.<name>` deletes `<name>` of the layers below, and
`.wh..wh..opq` hides everything the layers below put in its directory (wherever it
stands in its own layer's tar). Only what the readers found is kept, never the list of
every path, so memory follows the number of packages, not of files."""

from __future__ import annotations

import logging
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.sbom.layers import entries, normalized

log = logging.getLogger("dockyard.sbom")

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


@dataclass(frozen=True)
class FileReader:
    """One kind of file that tells installed packages (or the distribution): `wants`
    picks its files by path and tar entry (cheap: asked of every file of every layer),
    `read` reads one from its stream (`size` bytes) and returns what it found, or None
    when the file turns out not to be one (a binary that is not Go's)."""

    kind: str
    wants: Callable[[str, tarfile.TarInfo], bool]
    read: Callable[[str, BinaryIO, int], object | None]


@dataclass(frozen=True)
class Found:
    """What a reader found in one file of the merged filesystem."""

    kind: str
    path: str
    value: object


class Rootfs:
    def __init__(self, readers: Sequence[FileReader]) -> None:
        self._readers = readers
        self._found: dict[str, Found] = {}
        # Every directory above a kept file, with how many kept files it holds: a
        # deleted or replaced path is looked up here before the kept files are scanned.
        self._dirs: Counter[str] = Counter()

    def apply(self, layer: BinaryIO) -> None:
        """Apply the next layer (a blob stream, compressed or not) on top."""
        own: set[str] = set()  # kept from this layer: its whiteouts do not touch them
        for member, tar in entries(layer):
            path = normalized(member.name)
            if not path:
                continue
            parent, _, base = path.rpartition("/")
            if base == OPAQUE:
                self._remove_below(parent, own)
                continue
            if base.startswith(WHITEOUT):
                hidden = f"{parent}/{base[len(WHITEOUT) :]}" if parent else base[len(WHITEOUT) :]
                self._remove(hidden, own)
                continue
            if not member.isdir():
                self._remove_below(path, own)
            self._drop(path)
            if member.isreg():
                found = self._read(path, member, tar)
                if found is not None:
                    self._keep(found)
                    own.add(path)

    def found(self) -> Iterator[Found]:
        """What the readers found in the files left, by path."""
        for path in sorted(self._found):
            yield self._found[path]

    def _read(self, path: str, member: tarfile.TarInfo, tar: tarfile.TarFile) -> Found | None:
        for reader in self._readers:
            if reader.wants(path, member):
                data = tar.extractfile(member)
                if data is None:
                    return None
                try:
                    value = reader.read(path, data, member.size)
                except Exception as exc:  # a damaged file lists nothing, the rest goes on
                    log.info(
                        "sbom: unreadable file",
                        extra={"fields": {"path": path, "kind": reader.kind, "error": repr(exc)}},
                    )
                    return None
                return None if value is None else Found(reader.kind, path, value)
        return None

    def _keep(self, found: Found) -> None:
        self._drop(found.path)
        self._found[found.path] = found
        for directory in _parents(found.path):
            self._dirs[directory] += 1

    def _drop(self, path: str) -> None:
        if self._found.pop(path, None) is not None:
            for directory in _parents(path):
                self._dirs[directory] -= 1
                if not self._dirs[directory]:
                    del self._dirs[directory]

    def _remove(self, path: str, own: set[str]) -> None:
        if path not in own:
            self._drop(path)
        self._remove_below(path, own)

    def _remove_below(self, directory: str, own: set[str]) -> None:
        if directory and directory not in self._dirs:
            return
        prefix = f"{directory}/" if directory else ""
        for path in [p for p in self._found if p.startswith(prefix) and p not in own]:
            self._drop(path)


def _parents(path: str) -> Iterator[str]:
    parent = path.rpartition("/")[0]
    while parent:
        yield parent
        parent = parent.rpartition("/")[0]
