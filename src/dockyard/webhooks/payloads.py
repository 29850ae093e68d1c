"""What a webhook is sent for an outbox event: ACR's payloads, field for field.

An outbox event gives zero or more *notices*, each one POST body under one webhook
action: a push gives `push`, and `chart_push` too when it is a Helm chart (its config
media type is Helm's), then `quarantine` (ACR raises both for every push); a push the
quarantine policy holds gives only `quarantine`, and its `push` comes when a quarantine
writer sets it `Passed` (a `quarantine` event that released it; other state changes
give nothing); a manifest delete
gives `delete` (and `chart_delete`); a repository delete gives one `delete` per manifest
it took. Tag deletes (`untag`) give nothing, as on ACR. A stored vulnerability scan gives
Dockyard's own `scan`, its target the manifest and its `scan` the findings' summary. A
notice's id is derived from the event, so every retry of it carries the same id
(receivers can deduplicate).
A chart's `name` and `version` follow Helm's naming of what it pushes: the repository's
last path segment and the tag."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.core.events import (
    Envelope,
    Event,
    ManifestDeleted,
    ManifestPushed,
    Origin,
    QuarantineChanged,
    RepositoryDeleted,
    ScanCompleted,
)

# ACR's five, then Dockyard's own `scan` (a vulnerability scan stored: Harbor's "scanning
# completed"), which `az acr webhook create --actions` does not offer but the API takes.
ACTIONS = ("push", "delete", "quarantine", "chart_push", "chart_delete", "scan")
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
# The events each webhook action is made from.
TAKES: dict[str, tuple[type[Event], ...]] = {
    "push": (ManifestPushed, QuarantineChanged),
    "chart_push": (ManifestPushed,),
    "delete": (ManifestDeleted, RepositoryDeleted),
    "chart_delete": (ManifestDeleted, RepositoryDeleted),
    "quarantine": (ManifestPushed,),
    "scan": (ScanCompleted,),
}
_IDS = uuid.UUID("0d0c4a7e-8f5e-4b7a-9d55-6a1f3c2b9e10")  # namespace of notice ids


@dataclass(frozen=True)
class Notice:
    action: str
    repository: str
    tags: tuple[str, ...]  # what a scope's tag part is matched against
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.body["id"])


def timestamp(moment: datetime) -> str:
    """ACR's form: ISO 8601 in UTC with a Z."""
    return moment.isoformat().replace("+00:00", "Z")


def notices(stored: Envelope) -> list[Notice]:
    """The POST bodies an outbox event gives, in the order they are sent."""
    event = stored.event
    match event:
        case ManifestPushed():
            tag = getattr(event, "tag", None)
            tags = (tag,) if tag is not None else ()
            target = _pushed(event, tag)
            found = []
            if not event.held:
                found.append(_notice(stored, "push", tags, target, event.origin))
                if event.config_media_type == HELM_CONFIG:
                    found.append(_notice(stored, "chart_push", tags, _chart(target, tags), None))
            found.append(_notice(stored, "quarantine", tags, target, event.origin))
            return found
        case QuarantineChanged(released=True):
            tags = (event.tag,) if event.tag is not None else ()
            return [_notice(stored, "push", tags, _pushed(event, event.tag), event.origin)]
        case ScanCompleted():
            target = {"digest": event.digest, "repository": event.repository}
            notice = _notice(stored, "scan", (), target, None)
            notice.body["scan"] = {
                "worst": event.worst,
                "findings": event.findings,
                "counts": dict(event.counts),
                "reportDigest": event.report_digest,
            }
            return [notice]
        case ManifestDeleted():
            tags = event.tags
            gone = [(event.digest, event.media_type, event.config_media_type)]
        case RepositoryDeleted():  # every manifest it had
            tags = event.tags
            gone = [(m.digest, m.media_type, m.config_media_type) for m in event.manifests]
        case _:
            return []
    found = []
    for digest, media_type, config_media_type in gone:
        target = _deleted(event.repository, digest, media_type)
        found.append(_notice(stored, "delete", tags, target, event.origin))
        if config_media_type == HELM_CONFIG:
            chart = _chart(target, tags[:1])
            found.append(_notice(stored, "chart_delete", tags, chart, None))
    return found


def ping(notice_id: str, moment: datetime) -> dict[str, Any]:
    """A ping's body: ACR documents none; ours says only what it is."""
    return {"id": notice_id, "timestamp": timestamp(moment), "action": "ping"}


def _notice(
    stored: Envelope,
    action: str,
    tags: tuple[str, ...],
    target: dict[str, Any],
    origin: Origin | None,
) -> Notice:
    key = f"{stored.id}/{timestamp(stored.created_at)}/{action}/{target.get('digest', '')}"
    body: dict[str, Any] = {
        "id": str(uuid.uuid5(_IDS, key)),
        "timestamp": timestamp(stored.created_at),
        "action": action,
        "target": target,
    }
    if origin is not None:
        body["request"] = origin.request()
    return Notice(action, stored.event.repository, tags, body)


def _pushed(event: ManifestPushed | QuarantineChanged, tag: str | None) -> dict[str, Any]:
    """A push's (or quarantine's) target: size and length are both the manifest's."""
    target: dict[str, Any] = {}
    if event.media_type is not None:
        target["mediaType"] = event.media_type
    if event.size is not None:
        target["size"] = event.size
    target["digest"] = event.digest
    if event.size is not None:
        target["length"] = event.size
    target["repository"] = event.repository
    if tag is not None:
        target["tag"] = tag
    return target


def _deleted(repository: str, digest: str, media_type: str | None) -> dict[str, Any]:
    """A delete's target: no size, length or tag."""
    target: dict[str, Any] = {}
    if media_type is not None:
        target["mediaType"] = media_type
    target["digest"] = digest
    target["repository"] = repository
    return target


def _chart(target: dict[str, Any], tags: tuple[str, ...]) -> dict[str, Any]:
    chart = {k: v for k, v in target.items() if k != "length"}
    if tags:
        chart["tag"] = tags[0]
    chart["name"] = target["repository"].rsplit("/", 1)[-1]
    if tags:
        chart["version"] = tags[0]
    return chart
