"""A bundle: several changes of one registry sent to a peer as one request, applied there
in the order they were put in (`sender` builds it, `api.changes` reads it). What would
be one request per blob, manifest and tag write (an image's config and small layers,
then its manifest with its tag) costs one: the request's fixed price (its connection
turn, the peer check, the registry's lookup) is paid once per bundle, not per piece.

The framing: the header's length in bytes as ASCII digits and a newline, the header (a
JSON object, `{"changes": [...]}`), then the bytes of each change that has any (a
blob's, a manifest's body), one after the other in the changes' order, each as long as
its `size` says. A change is
`{"kind": "blob", "repository", "digest", "size"}`, or
`{"kind": "manifest", "repository", "digest", "mediaType", "size"}` with, when the
manifest comes with a write of a tag naming it, `"tag"`, `"stamp"` and `"restored"`.
Only bytes are carried, never trusted: the peer verifies each blob and manifest against
its digest as it would any other."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from dockyard.common.errors import RequestInvalid
from dockyard.replication.stamps import Stamp

MEDIA_TYPE = "application/vnd.dockyard.replication.changes"
MOST_BYTES = 16 << 20  # the most a peer reads of one bundle; a sender stays well below
_HEADER_DIGITS = 10


@dataclass(frozen=True)
class BlobChange:
    repository: str
    digest: str
    data: bytes


@dataclass(frozen=True)
class ManifestChange:
    repository: str
    digest: str
    media_type: str
    body: bytes
    tag: str | None = None  # with `stamp`: the write of this tag naming the manifest
    stamp: Stamp | None = None
    restored: bool = False


Change = BlobChange | ManifestChange


class Bundle:
    """Changes on their way to one region for one registry, in order; a blob or a
    manifest put twice goes once (the first time, before whatever needs it), a tag's
    write every time (a tag moved away and back ends where its last write says)."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.size = 0  # bytes of blobs and manifests carried
        self._held: set[tuple[str, str]] = set()

    def __bool__(self) -> bool:
        return bool(self.changes)

    def holds(self, repository: str, digest: str) -> bool:
        return (repository, digest) in self._held

    def add(self, change: Change) -> None:
        key = (change.repository, change.digest)
        tagged = isinstance(change, ManifestChange) and change.tag is not None
        if key in self._held and not tagged:
            return
        self._held.add(key)
        self.changes.append(change)
        self.size += len(change.data if isinstance(change, BlobChange) else change.body)

    def encode(self) -> Iterator[bytes]:
        """The request's body (see the module's docstring)."""
        header = orjson.dumps({"changes": [_described(change) for change in self.changes]})
        yield b"%d\n" % len(header)
        yield header
        for change in self.changes:
            yield change.data if isinstance(change, BlobChange) else change.body


def _described(change: Change) -> dict[str, Any]:
    if isinstance(change, BlobChange):
        return {
            "kind": "blob",
            "repository": change.repository,
            "digest": change.digest,
            "size": len(change.data),
        }
    described: dict[str, Any] = {
        "kind": "manifest",
        "repository": change.repository,
        "digest": change.digest,
        "mediaType": change.media_type,
        "size": len(change.body),
    }
    if change.tag is not None and change.stamp is not None:
        described |= {"tag": change.tag, "stamp": change.stamp.as_json()}
        if change.restored:
            described["restored"] = True
    return described


def read_bundle(body: bytes) -> list[Change]:
    """The changes of a bundle's body, in order; `RequestInvalid` for anything that is
    not one."""
    length, newline, _ = body[: _HEADER_DIGITS + 1].partition(b"\n")
    if not newline or not length.isdigit():
        raise RequestInvalid("a bundle starts with its header's length and a newline")
    start = len(length) + 1
    end = start + int(length)
    try:
        header = orjson.loads(body[start:end])
    except orjson.JSONDecodeError:
        raise RequestInvalid("a bundle's header is not JSON") from None
    described = header.get("changes") if isinstance(header, dict) else None
    if not isinstance(described, list):
        raise RequestInvalid("a bundle's header is {'changes': [...]}")
    changes: list[Change] = []
    offset = end
    for item in described:
        change = _change(item, body, offset)
        offset += len(change.data if isinstance(change, BlobChange) else change.body)
        changes.append(change)
    if offset != len(body):
        raise RequestInvalid("a bundle's bytes are not as long as its header says")
    return changes


def _change(item: Any, body: bytes, offset: int) -> Change:
    if not isinstance(item, dict):
        raise RequestInvalid("a bundle's change is an object")
    size = item.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise RequestInvalid("a bundle's change has a size")
    if offset + size > len(body):
        raise RequestInvalid("a bundle's bytes end before its header says")
    data = body[offset : offset + size]
    repository, digest = _text(item, "repository"), _text(item, "digest")
    if item.get("kind") == "blob":
        return BlobChange(repository, digest, data)
    if item.get("kind") != "manifest":
        raise RequestInvalid("a bundle's change is a blob or a manifest")
    tag, stamp = item.get("tag"), None
    if tag is not None:
        if not isinstance(tag, str):
            raise RequestInvalid("a bundle's tag is a string")
        try:
            stamp = Stamp.from_json(item.get("stamp"))
        except ValueError as exc:
            raise RequestInvalid(str(exc)) from None
    return ManifestChange(
        repository,
        digest,
        _text(item, "mediaType"),
        data,
        tag,
        stamp,
        item.get("restored") is True,
    )


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise RequestInvalid(f"a bundle's change has a {key}")
    return value
