"""Inside an image, for the portal: one directory of a layer, or of the image's merged
filesystem (its layers applied base first, with OCI's whiteouts), and one file's bytes.

Every read is a stream through the layer blob (decompressed as it is read, by the SBOM
feature's `sbom.layers.entries`): nothing is unpacked to disk, and a listing keeps only
the entries of the directory asked for, so memory follows that directory, not the
layer. The layering rules are `sbom/rootfs.py`'s: a later layer's entry replaces an
earlier one's, `.wh.<name>` hides `<name>` of the layers below, `.wh..wh..opq` hides
everything below in its directory, a whiteout never hides its own layer's entries, and
a file that replaces a directory hides what the layers below had in it."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import zstandard

from dockyard.common.errors import RequestInvalid
from dockyard.sbom.layers import entries, normalized
from dockyard.sbom.rootfs import OPAQUE, WHITEOUT
from dockyard.storage.base import BlobStore

# What a file's page shows of its content; the download streams all of it.
PREVIEW_BYTES = 64 * 1024
CHUNK = 256 * 1024


@dataclass(frozen=True)
class Entry:
    name: str  # within its directory
    kind: str  # directory, file, symlink, hardlink, other
    size: int
    mode: int
    target: str | None  # a link's target
    layer: int  # the layer (0-based) it comes from


@dataclass(frozen=True)
class Preview:
    size: int
    text: str | None  # None: binary, or not UTF-8
    truncated: bool


@contextlib.contextmanager
def _readable(digest: str) -> Iterator[None]:
    """A layer that is no tar archive (compressed or not) is the request's problem, not
    the server's: a layer of an artifact may be anything."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError, gzip.BadGzipFile) as exc:
        raise RequestInvalid(f"layer {digest} is not a tar archive: {type(exc).__name__}") from None


def _kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "directory"
    if member.isreg():
        return "file"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    return "other"


def _inside(path: str, directory: str) -> bool:
    """Whether `path` is `directory` or an ancestor of it ('' is the root)."""
    return not path or path == directory or directory.startswith(path + "/")


def _layer_children(
    stream: BinaryIO, directory: str, layer: int
) -> tuple[dict[str, Entry], set[str], bool]:
    """One layer's entries directly in `directory`, the names its whiteouts hide there,
    and whether it hides everything the layers below had there."""
    own: dict[str, Entry] = {}
    hidden: set[str] = set()
    cleared = False
    for member, _ in entries(stream):
        path = normalized(member.name)
        if not path:
            continue
        parent, _, base = path.rpartition("/")
        below = path[len(directory) + 1 :] if directory else path
        if (not directory or path.startswith(directory + "/")) and "/" in below:
            # A deeper entry: its first directory here exists, listed in the tar or not.
            child = below.partition("/")[0]
            if child not in own:
                own[child] = Entry(child, "directory", 0, 0o755, None, layer)
        if base == OPAQUE:
            cleared = cleared or parent == directory
            continue
        if base.startswith(WHITEOUT):
            name = base[len(WHITEOUT) :]
            target = f"{parent}/{name}" if parent else name
            if _inside(target, directory):
                cleared = True
            elif parent == directory:
                hidden.add(name)
            continue
        if parent == directory:
            target_name = member.linkname if (member.issym() or member.islnk()) else None
            own[base] = Entry(base, _kind(member), member.size, member.mode, target_name, layer)
        elif _inside(path, directory) and not member.isdir():
            cleared = True  # a file where the directory (or one above it) was
    return own, hidden, cleared


def listing(
    store: BlobStore, layers: Sequence[str], directory: str, only: int | None
) -> list[Entry]:
    """The entries of `directory` ('' for the root): of layer `only`, or of the merged
    filesystem of `layers` when `only` is None; directories first, then by name."""
    shown: dict[str, Entry] = {}
    chosen = range(len(layers)) if only is None else [only]
    for index in chosen:
        with _readable(layers[index]), store.open(layers[index]) as stream:
            own, hidden, cleared = _layer_children(stream, directory, index)
        if cleared:
            shown.clear()
        for name in hidden:
            shown.pop(name, None)
        shown.update(own)
    return sorted(shown.values(), key=lambda e: (e.kind != "directory", e.name))


def _find(stream: BinaryIO, path: str) -> Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]:
    for member, tar in entries(stream):
        if normalized(member.name) == path and member.isreg():
            yield member, tar
            return


def preview(store: BlobStore, layer: str, path: str) -> Preview | None:
    """The start of a regular file of the layer, as text if it is UTF-8 without NULs;
    None if the layer has no such file."""
    with _readable(layer), store.open(layer) as stream:
        for member, tar in _find(stream, path):
            extracted = tar.extractfile(member)
            assert extracted is not None
            head = extracted.read(PREVIEW_BYTES)
            try:
                text = None if b"\0" in head else head.decode()
            except UnicodeDecodeError:
                text = None
            return Preview(member.size, text, member.size > len(head))
    return None


def file_size(store: BlobStore, layer: str, path: str) -> int | None:
    with _readable(layer), store.open(layer) as stream:
        for member, _ in _find(stream, path):
            return member.size
    return None


def content(store: BlobStore, layer: str, path: str) -> Iterator[bytes]:
    """A regular file's bytes, read from the layer as they stream by (for a download;
    run in a thread: it reads the blob)."""
    with store.open(layer) as stream:
        for member, tar in _find(stream, path):
            extracted = tar.extractfile(member)
            assert extracted is not None
            while chunk := extracted.read(CHUNK):
                yield chunk


@dataclass(frozen=True)
class Stat:
    """What tells two versions of a path apart: kind, size, mode, link target and, for
    a regular file, a digest of its bytes."""

    kind: str
    size: int
    mode: int
    target: str | None
    digest: str | None


@dataclass(frozen=True)
class Difference:
    added: list[tuple[str, Stat]]
    removed: list[tuple[str, Stat]]
    changed: list[tuple[str, Stat, Stat]]


def tree(store: BlobStore, layers: Sequence[str]) -> dict[str, Stat]:
    """Every path of the merged filesystem of `layers` (base first), with its `Stat`:
    memory follows the image's number of files, which a comparison needs whole."""
    paths: dict[str, Stat] = {}
    for digest in layers:
        own: set[str] = set()
        with _readable(digest), store.open(digest) as stream:
            for member, tar in entries(stream):
                path = normalized(member.name)
                if not path:
                    continue
                parent, _, base = path.rpartition("/")
                if base == OPAQUE:
                    _remove_below(paths, parent, own)
                    continue
                if base.startswith(WHITEOUT):
                    hidden = (
                        f"{parent}/{base[len(WHITEOUT) :]}" if parent else base[len(WHITEOUT) :]
                    )
                    if hidden not in own:
                        paths.pop(hidden, None)
                    _remove_below(paths, hidden, own)
                    continue
                if not member.isdir():
                    _remove_below(paths, path, own)
                paths[path] = _stat(member, tar)
                own.add(path)
    return paths


def _remove_below(paths: dict[str, Stat], directory: str, own: set[str]) -> None:
    prefix = f"{directory}/" if directory else ""
    for path in [p for p in paths if p.startswith(prefix) and p not in own]:
        del paths[path]


def _stat(member: tarfile.TarInfo, tar: tarfile.TarFile) -> Stat:
    digest = None
    if member.isreg():
        hasher = hashlib.blake2b(digest_size=16)
        extracted = tar.extractfile(member)
        assert extracted is not None
        while chunk := extracted.read(CHUNK):
            hasher.update(chunk)
        digest = hasher.hexdigest()
    target = member.linkname if (member.issym() or member.islnk()) else None
    return Stat(_kind(member), member.size if member.isreg() else 0, member.mode, target, digest)


def compare(before: dict[str, Stat], after: dict[str, Stat]) -> Difference:
    """Paths added, removed and changed from `before` to `after`, by path."""
    return Difference(
        added=sorted(((p, s) for p, s in after.items() if p not in before), key=_path),
        removed=sorted(((p, s) for p, s in before.items() if p not in after), key=_path),
        changed=sorted(
            ((p, before[p], s) for p, s in after.items() if p in before and before[p] != s),
            key=_path,
        ),
    )


def _path(item: tuple) -> str:  # type: ignore[type-arg]
    return item[0]
