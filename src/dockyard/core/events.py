"""What the registry tells the rest of the house it changed: one frozen dataclass per
kind of outbox event, and their wire form, here and nowhere else.

Core writes an event in the transaction that makes the change
(`tx.emit(*event.to_row())`); consumers (the audit log, webhooks, replication to come)
are handed it back, decoded by `from_row`, with the id and time the outbox gave it
(`Envelope`), and subscribe by class (`actions` turns classes into the stored actions
the outbox filters on). The wire form is the `events` row: an action string and a JSON
payload. It is what rows written by every earlier version hold, so it changes only with
a migration of those rows: a push is `push` whether or not it moved a tag, a manifest's
and a repository's delete are both `delete` (told apart by `manifestsDeleted`).
Decoding reads only keys every version wrote, and tolerates the optional ones missing.

Imports only the stored row's record and the current request (`request_origin`):
features depend on these classes, never the other way round."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from dockyard.common.request_context import current_request
from dockyard.metadata.outbox import EventRecord

Payload = dict[str, Any]


@dataclass(frozen=True)
class Origin:
    """The request a change was made in (`common.request_context`): the webhook payload's
    `request` object and the audit log's caller. Changes made outside a request (the
    worker's retention and purges, the offline CLI) have none."""

    id: str | None
    host: str | None
    method: str | None
    useragent: str | None
    identity: str | None
    ip: str | None

    def request(self) -> dict[str, str | None]:
        """ACR's `request` object, its keys in the order webhooks send them."""
        return {
            "id": self.id,
            "host": self.host,
            "method": self.method,
            "useragent": self.useragent,
        }


@dataclass(frozen=True, kw_only=True)
class Event:
    """A change in one repository of one registry."""

    ACTION: ClassVar[str]  # the stored action (one class may share it with another)

    registry_id: int
    repository: str

    def to_row(self) -> tuple[int, str, str, Payload]:
        """`Transaction.emit`'s arguments: registry, action, repository, payload."""
        return self.registry_id, self.ACTION, self.repository, self._payload()

    def _payload(self) -> Payload:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class ManifestPushed(Event):
    """A manifest stored by digest (new in the repository), or brought back from the
    recycle bin. `TagMoved` is the push that also names it with a tag."""

    ACTION = "push"

    digest: str
    size: int
    media_type: str | None = None  # None only for a restored manifest of unknown type
    config_media_type: str | None = None  # a Helm chart is told by its config's
    origin: Origin | None = None
    # Held back from those told of pushes (the `push` webhook) until released: a push
    # the registry's quarantine policy holds (`core.policies.PushHold`).
    held: bool = False
    # Brought back from the recycle bin (a restore), not pushed: geo-replication takes
    # the restored tag out of the other regions' bins too.
    restored: bool = False

    def _payload(self) -> Payload:
        return self._pushed(None)

    def _pushed(self, tag: str | None) -> Payload:
        payload: Payload = {"repository": self.repository, "digest": self.digest}
        if self.media_type is not None:
            payload["mediaType"] = self.media_type
        payload["size"] = self.size
        if tag is not None:
            payload["tag"] = tag
        if self.config_media_type:
            payload["configMediaType"] = self.config_media_type
        if self.held:
            payload["held"] = True
        if self.restored:
            payload["restored"] = True
        return payload | _origin_fields(self.origin)


@dataclass(frozen=True, kw_only=True)
class TagMoved(ManifestPushed):
    """A push by tag, or a restore with one: the tag now names the manifest (which may
    have been there before). A subscriber to `ManifestPushed` gets these too."""

    tag: str

    def _payload(self) -> Payload:
        return self._pushed(self.tag)


@dataclass(frozen=True, kw_only=True)
class Untagged(Event):
    """A tag deleted; the manifest it named stays."""

    ACTION = "untag"

    digest: str
    tag: str
    origin: Origin | None = None

    def _payload(self) -> Payload:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tag": self.tag,
        } | _origin_fields(self.origin)


@dataclass(frozen=True, kw_only=True)
class ManifestDeleted(Event):
    """A manifest deleted by digest, with every tag that named it."""

    ACTION = "delete"

    digest: str
    tags: tuple[str, ...]
    media_type: str | None = None
    config_media_type: str | None = None
    origin: Origin | None = None

    def _payload(self) -> Payload:
        return (
            {"repository": self.repository, "digest": self.digest, "tags": list(self.tags)}
            | _media_types(self.media_type, self.config_media_type)
            | _origin_fields(self.origin)
        )


@dataclass(frozen=True)
class DeletedManifest:
    """One manifest a repository's delete took."""

    digest: str
    media_type: str | None = None
    config_media_type: str | None = None


@dataclass(frozen=True, kw_only=True)
class RepositoryDeleted(Event):
    """A repository deleted with all its manifests and tags."""

    ACTION = "delete"

    manifests: tuple[DeletedManifest, ...]
    tags: tuple[str, ...]
    origin: Origin | None = None

    def _payload(self) -> Payload:
        return {
            "repository": self.repository,
            "manifestsDeleted": [m.digest for m in self.manifests],
            "tagsDeleted": list(self.tags),
            "manifests": [
                {"digest": m.digest} | _media_types(m.media_type, m.config_media_type)
                for m in self.manifests
            ],
        } | _origin_fields(self.origin)


@dataclass(frozen=True, kw_only=True)
class LocksChanged(Event):
    """ACR's changeable attributes of a repository, or of one tag or manifest in it."""

    ACTION = "lock"

    digest: str | None = None
    tag: str | None = None
    # By ACR's names (`deleteEnabled`, `writeEnabled`, `readEnabled`, `listEnabled`).
    changes: Mapping[str, bool] = field(default_factory=dict)

    def _payload(self) -> Payload:
        payload: Payload = {"repository": self.repository}
        if self.tag is not None:
            payload["tag"] = self.tag
        if self.digest is not None:
            payload["digest"] = self.digest
        return payload | {"changeableAttributes": dict(self.changes)}


@dataclass(frozen=True, kw_only=True)
class BlobDeleted(Event):
    """A blob unlinked from a repository (its bytes wait for garbage collection)."""

    ACTION = "blob_delete"

    digest: str

    def _payload(self) -> Payload:
        return {"digest": self.digest}


@dataclass(frozen=True, kw_only=True)
class QuarantineChanged(Event):
    """A quarantine writer changed a manifest's quarantine state (`Passed` or `Failed`),
    one event per tag naming it (one without a tag if none does). `released`: it passed
    while the registry's quarantine policy held it, so its `push` webhook goes out now,
    as ACR sends it."""

    ACTION = "quarantine"

    digest: str
    size: int | None = None
    media_type: str | None = None
    tag: str | None = None
    state: str | None = None
    released: bool = False
    origin: Origin | None = None

    def _payload(self) -> Payload:
        payload: Payload = {"repository": self.repository, "digest": self.digest}
        if self.media_type is not None:
            payload["mediaType"] = self.media_type
        if self.size is not None:
            payload["size"] = self.size
        if self.tag is not None:
            payload["tag"] = self.tag
        if self.state is not None:
            payload["quarantineState"] = self.state
        if self.released:
            payload["released"] = True
        return payload | _origin_fields(self.origin)


@dataclass(frozen=True, kw_only=True)
class ScanCompleted(Event):
    """A manifest's vulnerability scan finished (the scanning feature's, on push or
    after a database import). ACR has no webhook action for it: no webhook is sent; it
    is for the audit log, metrics and whatever else consumes the outbox."""

    ACTION = "scan"

    digest: str
    worst: str  # the worst severity found ("none" when nothing was)
    findings: int
    counts: Mapping[str, int] = field(default_factory=dict)  # findings by severity
    report_digest: str | None = None

    def _payload(self) -> Payload:
        payload: Payload = {
            "repository": self.repository,
            "digest": self.digest,
            "worst": self.worst,
            "findings": self.findings,
            "counts": dict(self.counts),
        }
        if self.report_digest is not None:
            payload["reportDigest"] = self.report_digest
        return payload


@dataclass(frozen=True)
class Envelope:
    """An event as the outbox hands it to a consumer: the id and time it was stored
    with (a webhook notice's id and timestamp, an audit row's key and time)."""

    id: int
    created_at: datetime
    event: Event


def actions(takes: Iterable[type[Event]]) -> frozenset[str] | None:
    """The stored actions of these classes and their subclasses, for the outbox's
    filter; None for every action (`Event` itself)."""
    takes = tuple(takes)
    if Event in takes:
        return None
    return frozenset(cls.ACTION for cls in takes)


def from_row(record: EventRecord) -> Envelope:
    """The typed event of a stored row. KeyError or ValueError for a row no version
    wrote (the consumer's delivery fails and is retried, as any handler's failure)."""
    decode = _DECODERS.get(record.action)
    if decode is None:
        raise ValueError(f"unknown outbox action {record.action!r}")
    event = decode(record.registry_id, record.repository, record.payload)
    return Envelope(record.id, record.created_at, event)


def _media_types(media_type: str | None, config_media_type: str | None) -> Payload:
    if media_type is None:
        return {}
    return {"mediaType": media_type} | (
        {"configMediaType": config_media_type} if config_media_type else {}
    )


def _origin_fields(origin: Origin | None) -> Payload:
    if origin is None:
        return {}
    return {"request": origin.request(), "caller": {"identity": origin.identity, "ip": origin.ip}}


def request_origin() -> Origin | None:
    """The request an event is emitted in, or None outside one. Called by core as it
    writes the request's event, which it notes."""
    info = current_request.get()
    if info is None:
        return None
    info.evented = True
    return Origin(
        id=info.id,
        host=info.host,
        method=info.method,
        useragent=info.useragent,
        identity=info.identity,
        ip=info.caller_ip,
    )


def _origin(payload: Payload) -> Origin | None:
    if "request" not in payload and "caller" not in payload:
        return None
    request, caller = payload.get("request", {}), payload.get("caller", {})
    return Origin(
        id=request.get("id"),
        host=request.get("host"),
        method=request.get("method"),
        useragent=request.get("useragent"),
        identity=caller.get("identity"),
        ip=caller.get("ip"),
    )


def _pushed(registry_id: int, repository: str, payload: Payload) -> ManifestPushed:
    fields = {
        "registry_id": registry_id,
        "repository": repository,
        "digest": payload["digest"],
        "size": payload["size"],
        "media_type": payload.get("mediaType"),
        "config_media_type": payload.get("configMediaType"),
        "origin": _origin(payload),
        "held": payload.get("held", False),
        "restored": payload.get("restored", False),
    }
    if "tag" in payload:
        return TagMoved(tag=payload["tag"], **fields)
    return ManifestPushed(**fields)


def _untagged(registry_id: int, repository: str, payload: Payload) -> Untagged:
    return Untagged(
        registry_id=registry_id,
        repository=repository,
        digest=payload["digest"],
        tag=payload["tag"],
        origin=_origin(payload),
    )


def _deleted(registry_id: int, repository: str, payload: Payload) -> Event:
    if "manifestsDeleted" in payload:
        # Rows written before media types were recorded have no `manifests`.
        described = payload.get("manifests") or [{"digest": d} for d in payload["manifestsDeleted"]]
        return RepositoryDeleted(
            registry_id=registry_id,
            repository=repository,
            manifests=tuple(
                DeletedManifest(m["digest"], m.get("mediaType"), m.get("configMediaType"))
                for m in described
            ),
            tags=tuple(payload["tagsDeleted"]),
            origin=_origin(payload),
        )
    return ManifestDeleted(
        registry_id=registry_id,
        repository=repository,
        digest=payload["digest"],
        tags=tuple(payload["tags"]),
        media_type=payload.get("mediaType"),
        config_media_type=payload.get("configMediaType"),
        origin=_origin(payload),
    )


def _locks(registry_id: int, repository: str, payload: Payload) -> LocksChanged:
    return LocksChanged(
        registry_id=registry_id,
        repository=repository,
        digest=payload.get("digest"),
        tag=payload.get("tag"),
        changes=payload.get("changeableAttributes", {}),
    )


def _blob_deleted(registry_id: int, repository: str, payload: Payload) -> BlobDeleted:
    return BlobDeleted(registry_id=registry_id, repository=repository, digest=payload["digest"])


def _quarantine(registry_id: int, repository: str, payload: Payload) -> QuarantineChanged:
    return QuarantineChanged(
        registry_id=registry_id,
        repository=repository,
        digest=payload["digest"],
        size=payload.get("size"),
        media_type=payload.get("mediaType"),
        tag=payload.get("tag"),
        state=payload.get("quarantineState"),
        released=payload.get("released", False),
        origin=_origin(payload),
    )


def _scanned(registry_id: int, repository: str, payload: Payload) -> ScanCompleted:
    return ScanCompleted(
        registry_id=registry_id,
        repository=repository,
        digest=payload["digest"],
        worst=payload["worst"],
        findings=payload["findings"],
        counts=payload.get("counts", {}),
        report_digest=payload.get("reportDigest"),
    )


_DECODERS: dict[str, Callable[[int, str, Payload], Event]] = {
    ManifestPushed.ACTION: _pushed,
    Untagged.ACTION: _untagged,
    ManifestDeleted.ACTION: _deleted,
    LocksChanged.ACTION: _locks,
    BlobDeleted.ACTION: _blob_deleted,
    QuarantineChanged.ACTION: _quarantine,
    ScanCompleted.ACTION: _scanned,
}
