"""Queries of the audit log: `repository_events` (written in batches) and
`login_events` (written by `metadata.logins` at each login), read back by time,
identity, repository, operation and result, and pruned by age. What becomes a row, and
from where, is decided in `dockyard.audit.log`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import Dialect, delete, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.metadata import schema as t
from dockyard.metadata.engine import write_transaction
from dockyard.metadata.logins import LoginEventRecord
from dockyard.metadata.store import Metadata

_r, _l = t.repository_events, t.login_events


class RepositoryEventRecord(NamedTuple):
    """One `repository_events` row (its registry aside). A tuple: one is made per pull
    and waits up to a flush interval in the buffer, and a tuple of plain values is cheap
    to build and soon untracked by the garbage collector, whose full collections would
    otherwise scan every buffered row."""

    time: datetime
    operation: str  # Push, Pull, Untag, Delete
    repository: str
    result_type: str  # the HTTP status the operation was answered with
    result_description: str | None = None
    tag: str | None = None
    digest: str | None = None
    identity: str | None = None
    caller_ip: str | None = None
    user_agent: str | None = None
    login_server: str | None = None
    correlation_id: str | None = None
    size: int | None = None
    media_type: str | None = None
    artifact_type: str | None = None
    duration_ms: int | None = None
    event_id: int | None = None  # the outbox event it came from


_FIELDS = RepositoryEventRecord._fields
_COLUMNS = ("registry_id", *_FIELDS)


class _RowInsert:
    """The repository events' INSERT, compiled once per dialect and run as the driver's
    own executemany. A row per pull makes this the request path's biggest write, and
    SQLAlchemy's executemany builds and processes a parameter dict per row, which costs
    more than SQLite's insert itself. Only the time needs converting (SQLite keeps text)."""

    def __init__(self, dialect: Dialect) -> None:
        module = postgresql_insert if dialect.name == "postgresql" else sqlite_insert
        statement = module(_r).on_conflict_do_nothing(index_elements=[_r.c.event_id])
        compiled = statement.compile(dialect=dialect, column_keys=list(_COLUMNS))
        self.sql = compiled.string
        self.positional = compiled.positional
        # The compiled order (the table's), registry_id first; named styles take dicts.
        names = tuple(compiled.positiontup or ()) if self.positional else _COLUMNS
        assert names[0] == "registry_id" and sorted(names) == sorted(_COLUMNS), names
        self.names = names
        self.values = attrgetter(*names[1:])
        self.time_at = names.index("time") - 1
        self.time = _r.c.time.type.dialect_impl(dialect).bind_processor(dialect)

    def parameters(self, rows: Sequence[tuple[int, RepositoryEventRecord]]) -> list:
        values, at, convert = self.values, self.time_at, self.time
        found = []
        for registry_id, row in rows:
            fields_ = list(values(row))
            if convert is not None:
                fields_[at] = convert(fields_[at])
            found.append((registry_id, *fields_))
        return (
            found if self.positional else [dict(zip(self.names, row, strict=True)) for row in found]
        )


@dataclass(frozen=True)
class AuditFilter:
    """Which rows a query wants; None: any. `result` is a status (`404`), `success`
    (below 400) or `failure`."""

    since: datetime | None = None
    until: datetime | None = None
    identity: str | None = None
    repository: str | None = None
    operation: str | None = None
    result: str | None = None


class AuditStore:
    """Each method is a short transaction of its own, on PostgreSQL without the
    writers' lock: audit rows are only ever added, read and pruned."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta
        self._insert: _RowInsert | None = None

    def add(self, rows: Sequence[tuple[int, RepositoryEventRecord]]) -> None:
        """Insert (registry id, row) pairs in one transaction; a row of an outbox event
        already recorded (a redelivery) is skipped."""
        if not rows:
            return
        with self._meta.connection() as conn:
            insert = self._insert
            if insert is None:
                insert = self._insert = _RowInsert(conn.dialect)
            parameters = insert.parameters(rows)
            with write_transaction(conn, writers_lock=False):
                conn.exec_driver_sql(insert.sql, parameters)

    def repository_events(
        self, registry_id: int, wanted: AuditFilter, limit: int
    ) -> list[RepositoryEventRecord]:
        """The registry's matching repository events, newest first."""
        columns = [_r.c[name] for name in _FIELDS]
        query = select(*columns).where(
            _r.c.registry_id == registry_id,
            *_common(_r.c.time, _r.c.identity, _r.c.result_type, wanted),
        )
        if wanted.repository is not None:
            query = query.where(_r.c.repository == wanted.repository)
        if wanted.operation is not None:
            query = query.where(func.lower(_r.c.operation) == wanted.operation.lower())
        query = query.order_by(_r.c.time.desc(), _r.c.id.desc()).limit(limit)
        with self._meta.connection() as conn:
            return [RepositoryEventRecord(*row) for row in conn.execute(query)]

    def login_events(
        self, registry_id: int, wanted: AuditFilter, limit: int
    ) -> list[LoginEventRecord]:
        """The registry's matching login events, newest first. Logins have no
        repository; their operation is the login method (`password`, ...), or `login`
        for any."""
        query = select(
            _l.c.time,
            _l.c.identity,
            _l.c.method,
            _l.c.caller_ip,
            _l.c.result,
            _l.c.description,
            _l.c.user_agent,
            _l.c.correlation_id,
        ).where(
            _l.c.registry_id == registry_id,
            *_common(_l.c.time, _l.c.identity, _l.c.result, wanted),
        )
        if wanted.repository is not None:
            return []
        if wanted.operation is not None and wanted.operation.lower() != "login":
            query = query.where(func.lower(_l.c.method) == wanted.operation.lower())
        query = query.order_by(_l.c.time.desc(), _l.c.id.desc()).limit(limit)
        with self._meta.connection() as conn:
            return [LoginEventRecord(*row) for row in conn.execute(query)]

    def prune(self, before: datetime) -> int:
        """Delete the repository and login events of every registry older than
        `before`; how many went."""
        with self._meta.connection() as conn, write_transaction(conn, writers_lock=False):
            # Per registry, as the only index runs (every row has its registry: they go
            # together), not a scan of every pull ever kept.
            registries = select(t.registries.c.id).scalar_subquery()
            removed = conn.execute(
                delete(_r).where(_r.c.registry_id.in_(registries), _r.c.time < before)
            ).rowcount
            removed += conn.execute(delete(_l).where(_l.c.time < before)).rowcount
        return removed


def _common(time: Any, identity: Any, result: Any, wanted: AuditFilter) -> list[Any]:
    conditions: list[Any] = []
    if wanted.since is not None:
        conditions.append(time >= wanted.since)
    if wanted.until is not None:
        conditions.append(time < wanted.until)
    if wanted.identity is not None:
        conditions.append(identity == wanted.identity)
    if wanted.result is not None:
        word = wanted.result.lower()
        # Results are three-digit statuses: text order is numeric order.
        if word == "success":
            conditions.append(result < "400")
        elif word == "failure":
            conditions.append(result >= "400")
        else:
            conditions.append(result == wanted.result)
    return conditions
