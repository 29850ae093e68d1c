"""What a webhook is sent for an outbox event: ACR's payloads, field for field.

An outbox event gives zero or more *notices*, each one POST body under one webhook
action: a push gives `push`, and `chart_push` too when it is a Helm chart (its config
media type is Helm's); a manifest delete gives `delete` (and `chart_delete`); a
repository delete gives one `delete` per manifest it took; a `quarantine` event gives
`quarantine`. Tag deletes (`untag`) give nothing, as on ACR. A notice's id is derived
from the event, so every retry of it carries the same id (receivers can deduplicate).
A chart's `name` and `version` follow Helm's naming of what it pushes: the repository's
last path segment and the tag."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.metadata.outbox import EventRecord

ACTIONS = ("push", "delete", "quarantine", "chart_push", "chart_delete")
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
# The outbox actions each webhook action is made from.
SOURCES = {
    "push": "push",
    "chart_push": "push",
    "delete": "delete",
    "chart_delete": "delete",
    "quarantine": "quarantine",
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


def notices(event: EventRecord) -> list[Notice]:
    """The POST bodies an outbox event gives, in the order they are sent."""
    payload = event.payload
    if event.action in ("push", "quarantine"):
        tags = (payload["tag"],) if "tag" in payload else ()
        found = [_notice(event, event.action, tags, _pushed(payload), payload)]
        if event.action == "push" and payload.get("configMediaType") == HELM_CONFIG:
            chart = _chart(_pushed(payload), tags)
            found.append(_notice(event, "chart_push", tags, chart, None))
        return found
    if event.action != "delete":
        return []
    if "manifestsDeleted" in payload:  # a repository: every manifest it had
        tags = tuple(payload["tagsDeleted"])
        described = payload.get("manifests") or [{"digest": d} for d in payload["manifestsDeleted"]]
        gone = [payload | manifest for manifest in described]
    else:
        tags = tuple(payload["tags"])
        gone = [payload]
    found = []
    for manifest in gone:
        found.append(_notice(event, "delete", tags, _deleted(manifest), payload))
        if manifest.get("configMediaType") == HELM_CONFIG:
            chart = _chart(_deleted(manifest), tags[:1])
            found.append(_notice(event, "chart_delete", tags, chart, None))
    return found


def ping(notice_id: str, moment: datetime) -> dict[str, Any]:
    """A ping's body: ACR documents none; ours says only what it is."""
    return {"id": notice_id, "timestamp": timestamp(moment), "action": "ping"}


def _notice(
    event: EventRecord,
    action: str,
    tags: tuple[str, ...],
    target: dict[str, Any],
    requested: dict[str, Any] | None,
) -> Notice:
    key = f"{event.id}/{timestamp(event.created_at)}/{action}/{target.get('digest', '')}"
    body: dict[str, Any] = {
        "id": str(uuid.uuid5(_IDS, key)),
        "timestamp": timestamp(event.created_at),
        "action": action,
        "target": target,
    }
    if requested is not None and "request" in requested:
        body["request"] = requested["request"]
    return Notice(action, event.repository, tags, body)


def _pushed(payload: dict[str, Any]) -> dict[str, Any]:
    """A push's (or quarantine's) target: size and length are both the manifest's."""
    target: dict[str, Any] = {}
    if "mediaType" in payload:
        target["mediaType"] = payload["mediaType"]
    if "size" in payload:
        target["size"] = payload["size"]
    target["digest"] = payload["digest"]
    if "size" in payload:
        target["length"] = payload["size"]
    target["repository"] = payload["repository"]
    if "tag" in payload:
        target["tag"] = payload["tag"]
    return target


def _deleted(manifest: dict[str, Any]) -> dict[str, Any]:
    """A delete's target: no size, length or tag."""
    target: dict[str, Any] = {}
    if "mediaType" in manifest:
        target["mediaType"] = manifest["mediaType"]
    target["digest"] = manifest["digest"]
    target["repository"] = manifest["repository"]
    return target


def _chart(target: dict[str, Any], tags: tuple[str, ...]) -> dict[str, Any]:
    chart = {k: v for k, v in target.items() if k != "length"}
    if tags:
        chart["tag"] = tags[0]
    chart["name"] = target["repository"].rsplit("/", 1)[-1]
    if tags:
        chart["version"] = tags[0]
    return chart
