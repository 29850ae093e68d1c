"""Queries of ACR Tasks' runs (`task_runs`). What a run is, how it is scheduled and
executed, is `dockyard.tasks`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import func, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_r = t.task_runs

QUEUED, RUNNING = "Queued", "Running"
SUCCEEDED, FAILED, CANCELED, TIMEOUT, ERROR = "Succeeded", "Failed", "Canceled", "Timeout", "Error"
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELED, TIMEOUT, ERROR})


@dataclass(frozen=True)
class RunRecord:
    id: int
    registry_id: int
    number: int
    run_type: str
    status: str
    task_name: str | None
    request: dict[str, Any]
    source: str | None
    timeout_seconds: int
    output_images: list[dict[str, Any]]
    error_message: str | None
    runner: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    trigger: dict[str, Any]  # what started it (`timerTrigger`); empty: a request

    @property
    def run_id(self) -> str:
        return f"ca{self.number}"


_RUNS = select(
    _r.c.id,
    _r.c.registry_id,
    _r.c.number,
    _r.c.run_type,
    _r.c.status,
    _r.c.task_name,
    _r.c.request,
    _r.c.source,
    _r.c.timeout_seconds,
    _r.c.output_images,
    _r.c.error_message,
    _r.c.runner,
    _r.c.created_at,
    _r.c.started_at,
    _r.c.finished_at,
    _r.c.updated_at,
    _r.c.trigger,
)


def _record(row: Any) -> RunRecord:
    values = list(row)
    values[6] = orjson.loads(values[6])
    values[9] = orjson.loads(values[9]) if values[9] else []
    values[16] = orjson.loads(values[16]) if values[16] else {}
    return RunRecord(*values)


def run_number(run_id: str) -> int | None:
    """The number of ACR's run id `ca<number>`; None for anything else."""
    digits = run_id.lower().removeprefix("ca")
    if not run_id.lower().startswith("ca") or not digits.isdigit() or len(digits) > 12:
        return None
    return int(digits)


def find_run(meta: Metadata, registry_id: int, number: int) -> RunRecord | None:
    with meta.connection() as conn:
        row = conn.execute(
            _RUNS.where(_r.c.registry_id == registry_id, _r.c.number == number)
        ).first()
    return None if row is None else _record(row)


def runs(
    meta: Metadata,
    registry_id: int,
    limit: int,
    task_name: str | None = None,
    statuses: frozenset[str] | None = None,
) -> list[RunRecord]:
    """The registry's runs, newest first."""
    query = _RUNS.where(_r.c.registry_id == registry_id)
    if task_name is not None:
        query = query.where(_r.c.task_name == task_name)
    if statuses is not None:
        query = query.where(_r.c.status.in_(sorted(statuses)))
    with meta.connection() as conn:
        rows = conn.execute(query.order_by(_r.c.number.desc()).limit(limit)).all()
    return [_record(row) for row in rows]


def queued(meta: Metadata, limit: int) -> list[RunRecord]:
    """The oldest queued runs of every registry."""
    with meta.connection() as conn:
        rows = conn.execute(_RUNS.where(_r.c.status == QUEUED).order_by(_r.c.id).limit(limit)).all()
    return [_record(row) for row in rows]


def status_of(meta: Metadata, run_key: int) -> str | None:
    with meta.connection() as conn:
        return conn.execute(select(_r.c.status).where(_r.c.id == run_key)).scalar()


class RunWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def add(
        self,
        registry_id: int,
        run_type: str,
        request: dict[str, Any],
        source: str | None,
        timeout_seconds: int,
        task_name: str | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> int:
        """A queued run, numbered after the registry's last (the writers' lock orders
        concurrent schedules); its number."""
        last = self._conn.execute(
            select(func.max(_r.c.number)).where(_r.c.registry_id == registry_id)
        ).scalar()
        number = (last or 0) + 1
        self._conn.execute(
            insert(_r).values(
                registry_id=registry_id,
                number=number,
                run_type=run_type,
                status=QUEUED,
                task_name=task_name,
                trigger=None if trigger is None else orjson.dumps(trigger).decode(),
                request=orjson.dumps(request).decode(),
                source=source,
                timeout_seconds=timeout_seconds,
                created_at=self._now,
                updated_at=self._now,
            )
        )
        return number

    def claim(self, run_key: int, runner: str) -> bool:
        """Queued -> Running for this runner; False if another claimed it (or it was
        canceled) first."""
        done = self._conn.execute(
            update(_r)
            .where(_r.c.id == run_key, _r.c.status == QUEUED)
            .values(status=RUNNING, runner=runner, started_at=self._now, updated_at=self._now)
        )
        return done.rowcount == 1

    def cancel(self, run_key: int) -> bool:
        """A run not yet finished becomes Canceled (its runner notices and stops it)."""
        done = self._conn.execute(
            update(_r)
            .where(_r.c.id == run_key, _r.c.status.in_([QUEUED, RUNNING]))
            .values(status=CANCELED, finished_at=self._now, updated_at=self._now)
        )
        return done.rowcount == 1

    def finish(
        self,
        run_key: int,
        status: str,
        output_images: list[dict[str, Any]],
        error_message: str | None,
    ) -> None:
        """The run's end, unless it was canceled meanwhile (a cancel stands)."""
        self._conn.execute(
            update(_r)
            .where(_r.c.id == run_key, _r.c.status == RUNNING)
            .values(
                status=status,
                output_images=orjson.dumps(output_images).decode(),
                error_message=error_message,
                finished_at=self._now,
                updated_at=self._now,
            )
        )

    def abandon_running(self, before: datetime, message: str) -> int:
        """Runs whose runner stopped beating before `before` end in Error."""
        done = self._conn.execute(
            update(_r)
            .where(_r.c.status == RUNNING, _r.c.updated_at < before)
            .values(status=ERROR, error_message=message, finished_at=self._now)
        )
        return done.rowcount

    def beat(self, run_keys: list[int]) -> None:
        if run_keys:
            self._conn.execute(
                update(_r)
                .where(_r.c.id.in_(run_keys), _r.c.status == RUNNING)
                .values(updated_at=self._now)
            )
