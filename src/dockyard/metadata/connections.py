"""`Connections`: one database connection per thread, and how a dead one is noticed.

Checking a connection out of SQLAlchemy's pool per query costs several times the query
itself, so each thread keeps one connection (in autocommit mode, transactions begun
explicitly) for its whole life. When the database server goes away (a restart, an
administrator ending sessions) every thread's connection is dead at once: the first
thread to meet a broken one bumps an epoch, and every other thread replaces its own
before its next use. Never touches a table: queries are in the stores above it."""

from __future__ import annotations

import select as selectors
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from dockyard.common.errors import MetadataUnavailable
from dockyard.metadata.engine import is_sqlite

_PING_AFTER_IDLE = 5.0  # seconds; a connection idle longer is pinged before use


def _has_unread_data(conn: Connection) -> bool:
    """Whether the server sent something on this idle connection: on PostgreSQL only the
    notice that it is terminating the session (a restart, an administrator), or EOF.
    One non-blocking `select`, no round trip."""
    try:
        fd = conn.connection.dbapi_connection.pgconn.socket  # type: ignore[union-attr]
        return bool(selectors.select([fd], [], [], 0)[0])
    except Exception:
        return True


class Connections:
    """Each thread's connection to `engine`. Never `await` while holding one: the
    connection belongs to the thread, not to the coroutine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._opened: set[Connection] = set()  # every thread's, so close() reaches them
        self._opened_lock = threading.Lock()
        self._epoch = 0  # bumped whenever a thread finds its connection broken
        self._ping_idle = not is_sqlite(engine)  # a SQLite file cannot go away

    def close(self) -> None:
        """Close every thread's connection, then the pool (a database server would
        otherwise keep a session per thread that ever queried)."""
        with self._opened_lock:
            opened, self._opened = self._opened, set()
        for conn in opened:
            conn.close()
        self.engine.dispose()

    def _fresh(self) -> Connection | None:
        """This thread's connection if it can still be trusted, else None (after
        dropping it). A connection is distrusted once any thread met a broken one since
        it was opened (the database restarted: every session is gone), and checked with
        a ping when it sat idle or the server wrote to it unasked (an outage this
        process did not see)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            return None
        if local.epoch != self._epoch:
            self._drop(conn)
            return None
        if self._ping_idle and (
            time.monotonic() - local.used > _PING_AFTER_IDLE or _has_unread_data(conn)
        ):
            try:
                conn.exec_driver_sql("SELECT 1")
            except DBAPIError:
                self._broken(conn)
                return None
        return conn

    def _drop(self, conn: Connection) -> None:
        self._local.conn = None
        with self._opened_lock:
            self._opened.discard(conn)
        with suppress(Exception):
            conn.invalidate()

    def _broken(self, conn: Connection) -> None:
        """`conn` failed as a dead connection does: drop it, and have every other thread
        replace its own before its next use (they are likely dead too)."""
        with self._opened_lock:
            self._epoch += 1
        self._drop(conn)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """This thread's connection, opened (or replaced) if needed. An error of a dead
        connection drops it, and every other thread's; the database's operational
        errors (unreachable, dropped, locked past the timeout) leave as
        `MetadataUnavailable`, the domain's error, other errors as they are."""
        conn = self._fresh()
        if conn is None:
            try:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            except OperationalError as exc:
                raise MetadataUnavailable() from exc
            self._local.conn = conn
            self._local.epoch = self._epoch
            with self._opened_lock:
                self._opened.add(conn)
        try:
            yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                self._broken(conn)
            if isinstance(exc, OperationalError):
                raise MetadataUnavailable() from exc
            raise
        finally:
            self._local.used = time.monotonic()

    def ping(self) -> None:
        with self.connection() as conn:
            conn.exec_driver_sql("SELECT 1")
