"""The reads behind the gauges `/metrics` shows at each scrape: what the database knows
for every process and node alike (storage use, the outbox's backlog), so no process
keeps a copy that could disagree with another's."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata

_reg, _d, _w = t.registries, t.event_deliveries, t.webhooks

_STORAGE = select(_reg.c.name, _reg.c.storage_used_bytes).order_by(_reg.c.name)
# Undelivered events per consumer, and those of them waiting after a failed attempt.
_BACKLOG = (
    select(_d.c.consumer, func.count(), func.count(_d.c.last_error))
    .where(_d.c.delivered_at.is_(None))
    .group_by(_d.c.consumer)
    .order_by(_d.c.consumer)
)
_WEBHOOKS = select(_w.c.id, _reg.c.name, _w.c.name).join(_reg, _reg.c.id == _w.c.registry_id)


@dataclass(frozen=True)
class Backlog:
    consumer: str
    undelivered: int
    failing: int  # undelivered after a failed attempt (waiting for a retry)


class MonitoringStore:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def storage_used(self) -> list[tuple[str, int]]:
        """(registry name, bytes its blobs take), every registry."""
        with self._meta.connection() as conn:
            return [(name, used) for name, used in conn.execute(_STORAGE)]

    def backlog(self) -> list[Backlog]:
        """Each consumer with events undelivered."""
        with self._meta.connection() as conn:
            return [Backlog(*row) for row in conn.execute(_BACKLOG)]

    def webhook_names(self) -> dict[int, tuple[str, str]]:
        """Webhook id -> (registry name, webhook name)."""
        with self._meta.connection() as conn:
            return {id_: (registry, name) for id_, registry, name in conn.execute(_WEBHOOKS)}
