"""Queries of a registry's tasks (`tasks`). What a task's properties mean, and which of
them are secret, is `dockyard.tasks.definitions`; this module stores the JSON it is given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_t = t.tasks
_timers = t.task_timers


@dataclass(frozen=True)
class TaskRecord:
    id: int
    registry_id: int
    name: str
    location: str
    tags: dict[str, str]
    properties: dict[str, Any]  # secret values sealed
    created_at: datetime
    updated_at: datetime


_TASKS = select(
    _t.c.id,
    _t.c.registry_id,
    _t.c.name,
    _t.c.location,
    _t.c.tags,
    _t.c.properties,
    _t.c.created_at,
    _t.c.updated_at,
)


def _record(row: Any) -> TaskRecord:
    values = list(row)
    values[4] = orjson.loads(values[4])
    values[5] = orjson.loads(values[5])
    return TaskRecord(*values)


def find_task(meta: Metadata, registry_id: int, name: str) -> TaskRecord | None:
    with meta.connection() as conn:
        row = conn.execute(_TASKS.where(_t.c.registry_id == registry_id, _t.c.name == name)).first()
    return None if row is None else _record(row)


def registry_tasks(meta: Metadata, registry_id: int) -> list[TaskRecord]:
    """The registry's tasks by name."""
    with meta.connection() as conn:
        rows = conn.execute(_TASKS.where(_t.c.registry_id == registry_id).order_by(_t.c.name))
        return [_record(row) for row in rows]


@dataclass(frozen=True)
class TimerRecord:
    id: int
    registry_id: int
    task_name: str
    name: str
    schedule: str
    next_run_at: datetime


def due_timers(meta: Metadata, now: datetime) -> list[TimerRecord]:
    """The timers of every registry's tasks whose next occurrence is not after `now`."""
    query = (
        select(
            _timers.c.id,
            _t.c.registry_id,
            _t.c.name,
            _timers.c.name,
            _timers.c.schedule,
            _timers.c.next_run_at,
        )
        .join(_t, _t.c.id == _timers.c.task_id)
        .where(_timers.c.next_run_at <= now)
        .order_by(_timers.c.next_run_at, _timers.c.id)
    )
    with meta.connection() as conn:
        return [TimerRecord(*row) for row in conn.execute(query)]


class TaskWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def put(
        self,
        registry_id: int,
        name: str,
        location: str,
        tags: dict[str, str],
        properties: dict[str, Any],
        timers: list[tuple[str, str, datetime]],
    ) -> None:
        """The task as given, created or replaced (its creation time stays), with its
        timers (name, schedule, next occurrence) in place of those it had."""
        values = {
            "location": location,
            "tags": orjson.dumps(tags).decode(),
            "properties": orjson.dumps(properties).decode(),
            "updated_at": self._now,
        }
        done = self._conn.execute(
            update(_t).where(_t.c.registry_id == registry_id, _t.c.name == name).values(**values)
        )
        if done.rowcount == 0:
            self._conn.execute(
                insert(_t).values(
                    registry_id=registry_id, name=name, created_at=self._now, **values
                )
            )
        task_id = self._conn.execute(
            select(_t.c.id).where(_t.c.registry_id == registry_id, _t.c.name == name)
        ).scalar_one()
        self._conn.execute(delete(_timers).where(_timers.c.task_id == task_id))
        for timer, schedule, next_run_at in timers:
            self._conn.execute(
                insert(_timers).values(
                    task_id=task_id, name=timer, schedule=schedule, next_run_at=next_run_at
                )
            )

    def claim_timer(self, timer: TimerRecord, next_run_at: datetime) -> bool:
        """Move the timer on from the occurrence it was due at; False if another worker
        did first (or the task changed meanwhile)."""
        done = self._conn.execute(
            update(_timers)
            .where(_timers.c.id == timer.id, _timers.c.next_run_at == timer.next_run_at)
            .values(next_run_at=next_run_at)
        )
        return done.rowcount == 1

    def delete(self, registry_id: int, name: str) -> bool:
        done = self._conn.execute(
            delete(_t).where(_t.c.registry_id == registry_id, _t.c.name == name)
        )
        return done.rowcount == 1
