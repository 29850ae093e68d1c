"""Queries of the runs' logs kept in blob storage (`task_run_logs`): which digest holds
a run's log, and which logs are past their retention. The bytes are `tasks/run_logs.py`'s."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_l, _r = t.task_run_logs, t.task_runs


@dataclass(frozen=True)
class StoredLog:
    run_key: int
    registry_id: int
    digest: str
    size: int


_STORED = select(_l.c.run_id, _r.c.registry_id, _l.c.digest, _l.c.size).join(
    _r, _r.c.id == _l.c.run_id
)


def stored_log(meta: Metadata, registry_id: int, number: int) -> StoredLog | None:
    with meta.connection() as conn:
        row = conn.execute(
            _STORED.where(_r.c.registry_id == registry_id, _r.c.number == number)
        ).first()
    return None if row is None else StoredLog(*row)


def stored_before(meta: Metadata, before: datetime, limit: int) -> list[StoredLog]:
    """Logs stored before `before`, oldest first."""
    with meta.connection() as conn:
        rows = conn.execute(
            _STORED.where(_l.c.stored_at < before).order_by(_l.c.stored_at).limit(limit)
        ).all()
    return [StoredLog(*row) for row in rows]


class TaskLogWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def add(self, run_key: int, digest: str, size: int) -> None:
        self._conn.execute(
            insert(_l).values(run_id=run_key, digest=digest, size=size, stored_at=self._now)
        )

    def remove(self, run_keys: list[int]) -> None:
        if run_keys:
            self._conn.execute(delete(_l).where(_l.c.run_id.in_(run_keys)))
