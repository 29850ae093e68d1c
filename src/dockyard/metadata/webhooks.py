"""Queries of webhooks (`webhooks`) and of what they sent (`webhook_events`). What a
webhook may say, which events it is sent and how is `dockyard.webhooks`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.engine import write_transaction
from dockyard.metadata.notifications import announce
from dockyard.metadata.store import Metadata, Transaction

_w, _h = t.webhooks, t.webhook_events


@dataclass(frozen=True)
class WebhookRecord:
    id: int
    registry_id: int
    name: str
    sealed_service_uri: str
    sealed_custom_headers: str | None  # a sealed JSON object
    actions: tuple[str, ...]
    scope: str
    enabled: bool
    after_event_id: int
    location: str | None
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class SentRecord:
    """One POST of a webhook and its answer, as kept: secrets masked, bodies bounded.
    `response_status` None: no answer came (`error` says why)."""

    event_id: str
    action: str
    attempt: int
    request_uri: str
    request_headers: dict[str, str]
    request_body: str
    response_status: int | None
    response_reason: str | None
    response_headers: dict[str, str]
    response_body: str
    error: str | None
    sent_at: datetime
    duration_ms: int


_WEBHOOKS = select(
    _w.c.id,
    _w.c.registry_id,
    _w.c.name,
    _w.c.service_uri,
    _w.c.custom_headers,
    _w.c.actions,
    _w.c.scope,
    _w.c.enabled,
    _w.c.after_event_id,
    _w.c.location,
    _w.c.tags,
    _w.c.created_at,
    _w.c.updated_at,
)
_SENT = select(
    _h.c.event_id,
    _h.c.action,
    _h.c.attempt,
    _h.c.request_uri,
    _h.c.request_headers,
    _h.c.request_body,
    _h.c.response_status,
    _h.c.response_reason,
    _h.c.response_headers,
    _h.c.response_body,
    _h.c.error,
    _h.c.sent_at,
    _h.c.duration_ms,
)


def _webhook(row: Any) -> WebhookRecord:
    values = list(row)
    values[5] = tuple(a for a in values[5].split(",") if a)
    values[7] = bool(values[7])
    values[10] = orjson.loads(values[10]) if values[10] else {}
    return WebhookRecord(*values)


def _load(conn: Connection, *where: Any) -> list[WebhookRecord]:
    rows = conn.execute(_WEBHOOKS.where(*where).order_by(_w.c.registry_id, _w.c.name))
    return [_webhook(row) for row in rows]


class WebhookStore:
    """Reads, and the delivery history's writes: each its own short transaction, outside
    any registry change (no writers' lock)."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def webhooks(self, registry_id: int, name: str | None = None) -> list[WebhookRecord]:
        with self._meta.connection() as conn:
            if name is None:
                return _load(conn, _w.c.registry_id == registry_id)
            return _load(conn, _w.c.registry_id == registry_id, _w.c.name == name)

    def webhook(self, webhook_id: int) -> WebhookRecord | None:
        with self._meta.connection() as conn:
            found = _load(conn, _w.c.id == webhook_id)
        return found[0] if found else None

    def enabled(self) -> list[WebhookRecord]:
        """Every registry's enabled webhooks: what the background worker delivers to."""
        with self._meta.connection() as conn:
            return _load(conn, _w.c.enabled.is_(True))

    def sent(
        self, webhook_id: int, limit: int, before: int | None = None
    ) -> list[tuple[int, SentRecord]]:
        """(position, record) of the webhook's POSTs, newest first; `before` a position
        from an earlier page."""
        query = select(_h.c.id, *_SENT.selected_columns).where(_h.c.webhook_id == webhook_id)
        if before is not None:
            query = query.where(_h.c.id < before)
        with self._meta.connection() as conn:
            rows = conn.execute(query.order_by(_h.c.id.desc()).limit(limit)).all()
        return [(row[0], _sent(row[1:])) for row in rows]

    def acknowledged(self, webhook_id: int, event_ids: list[str]) -> set[str]:
        """Which of these payloads the receiver has already answered with a 2xx."""
        if not event_ids:
            return set()
        query = select(_h.c.event_id).where(
            _h.c.webhook_id == webhook_id,
            _h.c.event_id.in_(event_ids),
            _h.c.response_status >= 200,
            _h.c.response_status < 300,
        )
        with self._meta.connection() as conn:
            return set(conn.execute(query).scalars())

    def record(self, webhook_id: int, sent: SentRecord, keep: int) -> None:
        """Add a POST to the webhook's history, which keeps its newest `keep`."""
        with self._meta.connection() as conn, write_transaction(conn, writers_lock=False):
            conn.execute(
                insert(_h).values(
                    webhook_id=webhook_id,
                    event_id=sent.event_id,
                    action=sent.action,
                    attempt=sent.attempt,
                    request_uri=sent.request_uri,
                    request_headers=orjson.dumps(sent.request_headers).decode(),
                    request_body=sent.request_body,
                    response_status=sent.response_status,
                    response_reason=sent.response_reason,
                    response_headers=orjson.dumps(sent.response_headers).decode(),
                    response_body=sent.response_body,
                    error=sent.error,
                    sent_at=sent.sent_at,
                    duration_ms=sent.duration_ms,
                )
            )
            oldest_kept = (
                select(_h.c.id)
                .where(_h.c.webhook_id == webhook_id)
                .order_by(_h.c.id.desc())
                .offset(keep - 1)
                .limit(1)
                .scalar_subquery()
            )
            conn.execute(delete(_h).where(_h.c.webhook_id == webhook_id, _h.c.id < oldest_kept))


def _sent(row: Any) -> SentRecord:
    values = list(row)
    values[4] = orjson.loads(values[4])
    values[8] = orjson.loads(values[8]) if values[8] else {}
    values[9] = values[9] or ""
    return SentRecord(*values)


class WebhookWrites:
    """Changes inside one `Metadata.transaction()`: the limit check and the change see
    the same rows (two administrators cannot both slip past a limit)."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._conn = tx.conn
        # Every change here starts, stops or redirects a delivery: the background's
        # `Dispatcher` hears of it at commit (PostgreSQL) rather than at its next poll.
        announce(self._conn)

    def webhooks(self, registry_id: int, name: str | None = None) -> list[WebhookRecord]:
        if name is None:
            return _load(self._conn, _w.c.registry_id == registry_id)
        return _load(self._conn, _w.c.registry_id == registry_id, _w.c.name == name)

    def last_event_id(self) -> int:
        """The newest outbox event: a webhook enabled now is sent only later ones."""
        return self._conn.execute(select(func.max(t.events.c.id))).scalar() or 0

    def add(
        self,
        registry_id: int,
        name: str,
        sealed_service_uri: str,
        sealed_custom_headers: str | None,
        actions: tuple[str, ...],
        scope: str,
        enabled: bool,
        location: str | None,
        tags: dict[str, str],
    ) -> None:
        self._conn.execute(
            insert(_w).values(
                registry_id=registry_id,
                name=name,
                service_uri=sealed_service_uri,
                custom_headers=sealed_custom_headers,
                actions=",".join(actions),
                scope=scope,
                enabled=enabled,
                after_event_id=self.last_event_id(),
                location=location,
                tags=orjson.dumps(tags).decode() if tags else None,
                created_at=self._tx.now,
                updated_at=self._tx.now,
            )
        )

    def change(self, webhook: WebhookRecord, **values: Any) -> None:
        """Set columns of `webhook` (`actions` a tuple, `tags` a dict); enabling it
        starts it after the newest event."""
        if "actions" in values:
            values["actions"] = ",".join(values["actions"])
        if "tags" in values:
            values["tags"] = orjson.dumps(values["tags"]).decode() if values["tags"] else None
        if values.get("enabled") and not webhook.enabled:
            values["after_event_id"] = self.last_event_id()
        self._conn.execute(
            update(_w).where(_w.c.id == webhook.id).values(updated_at=self._tx.now, **values)
        )

    def delete(self, webhook_id: int) -> None:
        self._conn.execute(delete(_w).where(_w.c.id == webhook_id))
