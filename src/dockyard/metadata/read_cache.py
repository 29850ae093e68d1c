"""`ReadCache`: each thread's memory of hot reads, checked against the database once per
request (`common.request_context.current_request`), and `KeptRead` for the small
configuration reads every request makes.

Two caches per thread: content (`CONTENT_TABLES`: manifest reads, tag lists) and
configuration (`CONFIG_TABLES`: registry switches, logins). Each is emptied when a
change counter that triggers bump in the writing transaction moves
(`config_generation`, migration 0012; `content_generation`, migration 0014; their
PostgreSQL triggers are migration 0018's), so audit rows, outbox marks and blob
uploads, which change the database many times a second, leave both alone. Never runs a
query of its own but the counters' read: the loads are the stores' (`Metadata`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from psycopg import errors as pg_errors
from psycopg import pq
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from dockyard.common.request_context import current_request
from dockyard.metadata.connections import Connections
from dockyard.metadata.engine import is_sqlite
from dockyard.metadata.prepared import driver_execute
from dockyard.metadata.records import ManifestRecord

_CACHE_ENTRIES = 4096
# The name the counters' read is prepared under in each PostgreSQL session.
_PREPARED_NAME = b"dockyard_generations"
_NOT_PREPARED = "26000"  # invalid_sql_statement_name: the session lost it
# The change counters of the configuration and of the content (`schema.config_generation`,
# `schema.content_generation`), read raw: they are read after every change of the database.
_GENERATIONS = (
    "SELECT (SELECT value FROM config_generation WHERE id = 1),"
    " (SELECT value FROM content_generation WHERE id = 1)"
)
# What the configuration cache may hold: reads of these tables only (registries but
# their storage use), which triggers watch (migration 0012; 0020 for the quarantine
# policy).
CONFIG_TABLES = (
    "registries",
    "network_rules",
    "admin_passwords",
    "identities",
    "identity_secrets",
    "role_assignments",
    "scope_maps",
    "tokens",
    "token_passwords",
    "login_failures",
    "quarantine_policies",
    "scan_policies",
)
# What the content cache may hold: reads of these tables only (`manifest_by_tag`,
# `manifest_by_digest`, `tags`, quarantine states, scan results), which triggers watch
# (migrations 0014, 0020 and 0021). The audit log, the outbox and blob uploads change the
# database all the time without touching them.
CONTENT_TABLES = ("repositories", "tags", "manifests", "quarantine_states", "scan_results")
_CACHE_MAX_MANIFEST = 256 * 1024  # bytes; bigger manifests are rare and read from the database
_MISSING = object()


class ReadCache:
    """This process's read caches over `connections`, one pair per thread, each checked
    against the change counters at most once per request (`current_request`, which the
    API's outermost middleware sets; outside requests, at every read), so that a request
    reads one snapshot and sees every change committed before it began, by any thread,
    process or node.

    On SQLite the check is local: `PRAGMA data_version` changes when any other
    connection (another thread, worker or process) commits, and only then are the
    counters read; this thread's own commits empty the content cache (`after_write`).
    On PostgreSQL the check is one read of both counters, prepared once per session and
    run by libpq itself (`_generations`): a round trip, so it is made only by a request
    whose reads use the cache (a manifest GET: the check instead of the manifest's
    query), and the reads every request makes (`KeptRead`, the registry map) keep a few
    seconds instead. `enabled=False` (tests, measurements without the cache): every
    read is a query."""

    def __init__(self, connections: Connections, enabled: bool = True) -> None:
        self._connections = connections
        self._local = threading.local()
        self.enabled = enabled
        self.checks_locally = enabled and is_sqlite(connections.engine)

    def _check(self, conn: Connection, config: bool) -> dict[tuple, Any] | None:
        """This thread's content cache (with `config`: its configuration cache), emptied
        first if what it holds changed since the last check; None where there is no
        cache."""
        if not self.enabled:
            return None
        local = self._local
        cache = getattr(local, "cache", None)
        request = current_request.get()
        if (
            cache is not None
            and request is not None
            and getattr(local, "checked_for", None) is request
        ):
            # checked already in this request: one snapshot per request
            return local.config if config else cache
        if self.checks_locally:
            dbapi = conn.connection.dbapi_connection
            version = dbapi.execute("PRAGMA data_version").fetchone()[0]  # type: ignore[union-attr]
            # data_version counts per connection: a replaced connection starts another count.
            if (
                cache is not None
                and local.version == version
                and local.source is dbapi
                and len(cache) < _CACHE_ENTRIES
            ):
                local.checked_for = request
                return local.config if config else cache
            local.version, local.source = version, dbapi
        if self.checks_locally:
            configuration, content = driver_execute(conn, _GENERATIONS).fetchone()
        else:
            configuration, content = self._generations(conn)
        if cache is None or local.content != content or len(cache) >= _CACHE_ENTRIES:
            cache = local.cache = {}
            local.content = content
        kept = getattr(local, "config", None)
        if kept is None or local.generation != configuration or len(kept) >= _CACHE_ENTRIES:
            local.config = {}
            local.generation = configuration
        local.checked_for = request
        return local.config if config else cache

    def _generations(self, conn: Connection) -> tuple[int, int]:
        """Both counters, on PostgreSQL: the statement prepared once per session and
        run by libpq itself: the one round trip without psycopg's execution around it
        (a cursor, its result set-up), which costs more than the round trip. Errors
        wrapped as SQLAlchemy wraps them (a dead connection's an `OperationalError`,
        which `Connections` acts on)."""
        pgconn = conn.connection.dbapi_connection.pgconn  # type: ignore[union-attr]
        local = self._local
        try:
            if getattr(local, "prepared_on", None) is not pgconn:
                _prepare(pgconn)
                local.prepared_on = pgconn
            result = pgconn.exec_prepared(_PREPARED_NAME, None)
            if result.error_field(pq.DiagnosticField.SQLSTATE) == _NOT_PREPARED.encode():
                _prepare(pgconn)
                result = pgconn.exec_prepared(_PREPARED_NAME, None)
            _raise_for(pgconn, result)
        except pg_errors.Error as exc:
            local.prepared_on = None
            raise DBAPIError.instance(_GENERATIONS, (), exc, pg_errors.Error) from exc
        return int(result.get_value(0, 0)), int(result.get_value(0, 1))  # type: ignore[arg-type]

    def _checked(self, config: bool) -> dict[tuple, Any] | None:
        """This thread's cache if it was checked against the database already in this
        request (so a hit needs no connection at all), else None."""
        local = self._local
        request = current_request.get()
        if request is not None and getattr(local, "checked_for", None) is request:
            return local.config if config else local.cache
        return None

    def after_write(self) -> None:
        """This thread's own transaction ended: SQLite's `data_version` does not count a
        connection's own commits, so the content cache is emptied here."""
        self._local.cache = None

    def cached(self, key: tuple, load: Callable[[Connection], Any], config: bool = False) -> Any:
        """`load(conn)`, remembered under `key` until the content changes (with
        `config`, a read of `CONFIG_TABLES` only: until the configuration changes)."""
        checked = self._checked(config)
        if checked is not None:
            found = checked.get(key, _MISSING)
            if found is not _MISSING:
                return found
        with self._connections.connection() as conn:
            cache = self._check(conn, config)
            if cache is None:
                return load(conn)
            found = cache.get(key, _MISSING)
            if found is _MISSING:
                found = load(conn)
                if not isinstance(found, ManifestRecord) or found.size <= _CACHE_MAX_MANIFEST:
                    cache[key] = found
            return found

    def recall(self, key: tuple, config: bool = False) -> Any:
        """What `remember` kept under `key`, if the content (with `config`: the
        configuration) has not changed since; else None. For results computed off this
        thread (e.g. a password check)."""
        checked = self._checked(config)
        if checked is not None:
            return checked.get(key)
        with self._connections.connection() as conn:
            cache = self._check(conn, config)
            return None if cache is None else cache.get(key)

    def remember(self, key: tuple, value: Any, config: bool = False) -> None:
        with self._connections.connection() as conn:
            cache = self._check(conn, config)
            if cache is not None:
                cache[key] = value


def _prepare(pgconn: pq.abc.PGconn) -> None:
    _raise_for(pgconn, pgconn.prepare(_PREPARED_NAME, _GENERATIONS.encode()))


def _raise_for(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> None:
    """psycopg's error for a failed `result`: a connection that is gone gives an
    `OperationalError`, as psycopg's own execution would."""
    if result.status in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        return
    if pgconn.status != pq.ConnStatus.OK:
        message = pgconn.get_error_message()
        raise pg_errors.OperationalError(message or "the connection to the server was lost")
    raise pg_errors.error_from_result(result)


class KeptRead:
    """A small read of the configuration (`CONFIG_TABLES`) that every request makes
    (network policies, tiers): where the read cache is checked without a round trip
    (SQLite), kept in the configuration cache until the configuration changes;
    elsewhere kept `ttl` seconds in this process, so that a request that needs nothing
    else of the database (a blob upload) makes no query for it."""

    def __init__(
        self,
        cache: ReadCache,
        connections: Connections,
        key: tuple,
        load: Callable[[Connection], Any],
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cache = cache
        self._connections = connections
        self._key = key
        self._load = load
        self._ttl = ttl
        self._monotonic = monotonic
        self._memo: tuple[float, Any] | None = None

    def __call__(self) -> Any:
        if self._cache.checks_locally:
            return self._cache.cached(self._key, self._load, config=True)
        memo, now = self._memo, self._monotonic()
        if memo is None or now >= memo[0]:
            with self._connections.connection() as conn:
                memo = self._memo = (now + self._ttl, self._load(conn))
        return memo[1]
