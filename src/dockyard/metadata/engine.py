"""Engine construction per database kind, and the write transaction every change runs in.

SQLite gets WAL, a busy timeout and explicit `BEGIN IMMEDIATE` for writers; PostgreSQL
gets a pooled engine and a transaction-scoped writers' lock. On both, concurrent writers
queue instead of failing: the queries in this package read, then write, and rely on no
other writer changing the rows in between."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, nullcontext, suppress

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError

from dockyard.metadata.prepared import driver_execute

# The key of the PostgreSQL advisory lock writers take (any constant; "dockyard" in ASCII).
WRITERS_LOCK = 0x646F636B79617264


def database_url(url: str) -> str:
    """`postgresql://` (and libpq's `postgres://`) mean psycopg 3, the driver Dockyard
    ships; SQLAlchemy would otherwise look for psycopg2."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url.removeprefix(bare)
    return url


class WritersQueue:
    """Where a SQLite database's writers wait for their turn: an `flock` on a file
    beside the database, taken before `BEGIN IMMEDIATE`.

    SQLite's own busy handler makes a writer that finds the database locked sleep and
    poll (1, 2, 5 ms ... ), on whatever thread it runs: on a worker's event loop that
    stops every request of the worker, for longer than the lock was held. A waiter on
    the flock is woken by the kernel as soon as the holder is done, and the event loop's
    writers wait for it in a thread (`turn`), so the loop serves its other requests
    meanwhile. SQLite's lock stays the guarantee; this is only the queue in front of it
    (a writer that does not queue, e.g. an older process, is still excluded)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._local = threading.local()
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _open(self) -> int:
        """A new descriptor of the lock file (an flock needs only read access), or -1 if
        it cannot be opened (made by another user, say): the writer then goes without
        the queue, on SQLite's lock alone."""
        try:
            return os.open(self._path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return -1

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Wait (blocking this thread) for the turn, unless this thread has it already.

        On an event loop's thread, only take a free turn: a coroutine of this loop may
        be about to get it in `turn` and cannot give it back while the loop is blocked.
        Without it, SQLite's busy handler makes the writer wait, as before the queue."""
        # Nested in a turn this thread has already, or no lock file: no flock to take.
        fd = -1 if getattr(self._local, "depth", 0) else self._open()
        try:
            if fd >= 0:
                try:
                    asyncio.get_running_loop()
                    flags = fcntl.LOCK_EX | fcntl.LOCK_NB
                except RuntimeError:
                    flags = fcntl.LOCK_EX
                try:
                    fcntl.flock(fd, flags)
                except BlockingIOError:
                    os.close(fd)
                    fd = -1
            with self.hold_taken():
                yield
        finally:
            if fd >= 0:
                os.close(fd)  # releases the lock

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """The turn for the event loop's next write: one coroutine of this process at a
        time waits for it, in a thread when another process has it. Never `await` while
        holding it: write synchronously, then leave."""
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = asyncio.Lock()
        async with turns:
            fd = self._open()
            if fd >= 0:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    waiting = asyncio.ensure_future(
                        asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
                    )
                    try:
                        await asyncio.shield(waiting)
                    except BaseException:
                        # Cancelled while the thread waits: close when it is done (releasing).
                        waiting.add_done_callback(lambda _: os.close(fd))
                        raise
                except BaseException:
                    os.close(fd)
                    raise
            try:
                with self.hold_taken():
                    yield
            finally:
                if fd >= 0:
                    os.close(fd)

    @contextmanager
    def hold_taken(self) -> Iterator[None]:
        """Mark this thread as having its turn: writes nested in it take no flock."""
        local = self._local
        local.depth = getattr(local, "depth", 0) + 1
        try:
            yield
        finally:
            local.depth -= 1


# Each file-backed SQLite engine's queue of writers.
_QUEUES: weakref.WeakKeyDictionary[Engine, WritersQueue] = weakref.WeakKeyDictionary()


def writers_queue(engine: Engine) -> WritersQueue | None:
    return _QUEUES.get(engine)


def make_engine(url: str) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=8,
            max_overflow=16,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        database = engine.url.database
        if database and database != ":memory:":
            _QUEUES[engine] = WritersQueue(f"{database}-writers")
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _begin(conn: Connection, writers_lock: bool = True) -> None:
    """Start a write transaction holding the database's one writers' lock.

    SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so two writers queue on the
    busy timeout instead of one failing on lock upgrade. PostgreSQL: `BEGIN` (the
    connection is in autocommit mode, so this is the only transaction boundary), then a
    transaction-scoped advisory lock, released by COMMIT or ROLLBACK. Writers on every
    node queue on it as SQLite's do, so a read-then-write (ensure a repository, move a
    tag, check a lock) never races another writer; readers never wait for it."""
    if is_sqlite(conn.engine):
        driver_execute(conn, "BEGIN IMMEDIATE")
        return
    conn.exec_driver_sql("BEGIN")
    if writers_lock and conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITERS_LOCK})")


@contextmanager
def write_transaction(conn: Connection, writers_lock: bool = True) -> Iterator[None]:
    """One write transaction on an autocommit connection: committed on success, rolled
    back on error (a failed rollback on a broken connection never hides the error).
    `writers_lock=False` (PostgreSQL) skips the writers' lock, for writers that lock the
    rows they change themselves (the outbox's claims)."""
    queue = _QUEUES.get(conn.engine)
    with queue.hold() if queue is not None else nullcontext():
        try:
            _begin(conn, writers_lock)
            yield
        except BaseException:
            # On a broken connection the transaction is gone already: keep the first error.
            with suppress(DBAPIError):
                conn.exec_driver_sql("ROLLBACK")
            raise
        if queue is not None:  # SQLite: straight on the driver, as `Prepared` statements
            driver_execute(conn, "COMMIT")
        else:
            conn.exec_driver_sql("COMMIT")
