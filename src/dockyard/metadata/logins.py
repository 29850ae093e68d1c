"""Queries for logins: the audit rows of `login_events` and the shared failure counters
of `login_failures`, which every node reads and writes so that a lockout holds whichever
node a client reaches. The counting rules live in `dockyard.auth.login_guard`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, case, delete, insert, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_f, _e = t.login_failures, t.login_events


@dataclass(frozen=True)
class FailureRecord:
    count: int
    window_start: datetime  # the first failure counted; once locked, when the lock began


@dataclass(frozen=True)
class LoginEventRecord:
    time: datetime
    identity: str
    method: str
    caller_ip: str
    result: str
    description: str | None
    user_agent: str | None
    correlation_id: str | None = None  # the request's id


class LoginStore:
    """Reads through the shared `Metadata` connection; writes are `LoginWrites` on a
    `Metadata.transaction()`."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def failures(self, key: str) -> FailureRecord | None:
        with self._meta.connection() as conn:
            row = conn.execute(select(_f.c.count, _f.c.window_start).where(_f.c.key == key)).first()
        return None if row is None else FailureRecord(*row)

    def events(self, registry_id: int, limit: int = 100) -> list[LoginEventRecord]:
        """The latest login events of a registry, newest first."""
        with self._meta.connection() as conn:
            rows = conn.execute(
                select(
                    _e.c.time,
                    _e.c.identity,
                    _e.c.method,
                    _e.c.caller_ip,
                    _e.c.result,
                    _e.c.description,
                    _e.c.user_agent,
                )
                .where(_e.c.registry_id == registry_id)
                .order_by(_e.c.time.desc(), _e.c.id.desc())
                .limit(limit)
            )
            return [LoginEventRecord(*row) for row in rows]


class LoginWrites:
    """Login bookkeeping inside one `Metadata.transaction()`."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn

    def add_event(self, registry_id: int, event: LoginEventRecord) -> None:
        self._conn.execute(
            insert(_e).values(
                registry_id=registry_id,
                time=event.time,
                identity=event.identity,
                method=event.method,
                caller_ip=event.caller_ip,
                result=event.result,
                description=event.description,
                user_agent=event.user_agent,
                correlation_id=event.correlation_id,
            )
        )

    def count_failure(
        self, key: str, now: datetime, limit: int, window_since: datetime, lock_since: datetime
    ) -> FailureRecord:
        """Count one failure under `key` in a single statement, so that nodes failing at
        once all count. A counter still below `limit` restarts when its first failure is
        older than `window_since`; a locked one (at `limit`) when its lock began before
        `lock_since`. Reaching `limit` starts the lock `now`."""
        old_count, old_start = _f.c.count, _f.c.window_start
        expired = or_(
            and_(old_count < limit, old_start <= window_since),
            and_(old_count >= limit, old_start <= lock_since),
        )
        dialect_insert = (
            postgresql_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        )
        statement = (
            dialect_insert(_f)
            .values(key=key, count=1, window_start=now)
            .on_conflict_do_update(
                index_elements=[_f.c.key],
                set_={
                    "count": case((expired, 1), else_=old_count + 1),
                    "window_start": case(
                        (expired, now), (old_count + 1 == limit, now), else_=old_start
                    ),
                },
            )
            .returning(_f.c.count, _f.c.window_start)
        )
        return FailureRecord(*self._conn.execute(statement).one())

    def clear_failures(self, key: str) -> None:
        self._conn.execute(delete(_f).where(_f.c.key == key))

    def delete_expired_failures(
        self, limit: int, window_since: datetime, lock_since: datetime
    ) -> int:
        result = self._conn.execute(
            delete(_f).where(
                or_(
                    and_(_f.c.count < limit, _f.c.window_start <= window_since),
                    and_(_f.c.count >= limit, _f.c.window_start <= lock_since),
                )
            )
        )
        return result.rowcount
