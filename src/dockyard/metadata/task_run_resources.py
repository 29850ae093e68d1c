"""Queries of a registry's task runs (`task_run_resources`, ARM's `registries/taskRuns`).
What a run request means is `dockyard.tasks`'; this module stores the JSON it is given."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_t = t.task_run_resources


@dataclass(frozen=True)
class TaskRunRecord:
    registry_id: int
    name: str
    location: str
    identity: dict[str, Any] | None
    run_request: dict[str, Any]  # as shown: secret values left out
    force_update_tag: str | None
    run_number: int  # the latest run's
    created_at: datetime
    updated_at: datetime


def _record(row: Any) -> TaskRunRecord:
    return TaskRunRecord(
        row.registry_id,
        row.name,
        row.location,
        None if row.identity is None else orjson.loads(row.identity),
        orjson.loads(row.run_request),
        row.force_update_tag,
        row.run_number,
        row.created_at,
        row.updated_at,
    )


def find_task_run(meta: Metadata, registry_id: int, name: str) -> TaskRunRecord | None:
    with meta.connection() as conn:
        row = conn.execute(
            select(_t).where(_t.c.registry_id == registry_id, _t.c.name == name)
        ).first()
    return None if row is None else _record(row)


def registry_task_runs(meta: Metadata, registry_id: int) -> list[TaskRunRecord]:
    with meta.connection() as conn:
        rows = conn.execute(select(_t).where(_t.c.registry_id == registry_id).order_by(_t.c.name))
        return [_record(row) for row in rows]


def put_task_run(tx: Transaction, record: TaskRunRecord) -> None:
    """Create the task run, or replace what it holds (its creation time stays)."""
    values = {
        "location": record.location,
        "identity": None if record.identity is None else orjson.dumps(record.identity).decode(),
        "run_request": orjson.dumps(record.run_request).decode(),
        "force_update_tag": record.force_update_tag,
        "run_number": record.run_number,
        "updated_at": tx.now,
    }
    where = (_t.c.registry_id == record.registry_id, _t.c.name == record.name)
    if tx.conn.execute(update(_t).where(*where).values(**values)).rowcount == 0:
        tx.conn.execute(
            insert(_t).values(
                registry_id=record.registry_id, name=record.name, created_at=tx.now, **values
            )
        )


def delete_task_run(tx: Transaction, registry_id: int, name: str) -> bool:
    done = tx.conn.execute(delete(_t).where(_t.c.registry_id == registry_id, _t.c.name == name))
    return done.rowcount > 0
