"""Queries of scheduled purges: each registry's purge rules with their cron expression,
and the claim that lets one worker (of several) run a due one. When a rule runs next is
computed in `lifecycle.purge`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_s = t.purge_schedules
_COLUMNS = (
    _s.c.id,
    _s.c.registry_id,
    _s.c.name,
    _s.c.cron,
    _s.c.filters,
    _s.c.ago_seconds,
    _s.c.untagged,
    _s.c.untagged_only,
    _s.c.keep,
    _s.c.next_run_at,
    _s.c.last_run_at,
    _s.c.last_result,
)


@dataclass(frozen=True)
class PurgeSchedule:
    id: int
    registry_id: int
    name: str
    cron: str
    filters: tuple[str, ...]
    ago_seconds: int
    untagged: bool
    untagged_only: bool
    keep: int
    next_run_at: datetime
    last_run_at: datetime | None
    last_result: str | None


def _schedule(row: tuple) -> PurgeSchedule:
    values = list(row)
    values[4] = tuple(orjson.loads(values[4]))
    return PurgeSchedule(*values)


def schedules(meta: Metadata, registry_id: int) -> list[PurgeSchedule]:
    with meta.connection() as conn:
        rows = conn.execute(
            select(*_COLUMNS).where(_s.c.registry_id == registry_id).order_by(_s.c.name)
        )
        return [_schedule(row) for row in rows]


def due_schedules(meta: Metadata, now: datetime) -> list[PurgeSchedule]:
    with meta.connection() as conn:
        rows = conn.execute(select(*_COLUMNS).where(_s.c.next_run_at <= now).order_by(_s.c.id))
        return [_schedule(row) for row in rows]


class PurgeScheduleWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self.now = tx.now

    def add(self, schedule: PurgeSchedule) -> bool:
        """False if the registry has a schedule of that name."""
        exists = self._conn.execute(
            select(_s.c.id).where(
                _s.c.registry_id == schedule.registry_id, _s.c.name == schedule.name
            )
        ).first()
        if exists is not None:
            return False
        self._conn.execute(
            insert(_s).values(
                registry_id=schedule.registry_id,
                name=schedule.name,
                cron=schedule.cron,
                filters=orjson.dumps(list(schedule.filters)).decode(),
                ago_seconds=schedule.ago_seconds,
                untagged=schedule.untagged,
                untagged_only=schedule.untagged_only,
                keep=schedule.keep,
                created_at=self.now,
                next_run_at=schedule.next_run_at,
            )
        )
        return True

    def remove(self, registry_id: int, name: str) -> bool:
        result = self._conn.execute(
            delete(_s).where(_s.c.registry_id == registry_id, _s.c.name == name)
        )
        return result.rowcount > 0

    def claim(self, schedule: PurgeSchedule, next_run_at: datetime) -> bool:
        """Move a due schedule's next run on, unless another worker did first: the one
        whose update finds the old `next_run_at` runs it."""
        result = self._conn.execute(
            update(_s)
            .where(_s.c.id == schedule.id, _s.c.next_run_at == schedule.next_run_at)
            .values(next_run_at=next_run_at, last_run_at=self.now)
        )
        return result.rowcount > 0

    def record_result(self, schedule_id: int, result: str) -> None:
        self._conn.execute(update(_s).where(_s.c.id == schedule_id).values(last_result=result))
