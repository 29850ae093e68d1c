"""Engine construction per database kind, and the write transaction every change runs in.

SQLite gets WAL, a busy timeout and explicit `BEGIN IMMEDIATE` for writers; PostgreSQL
gets a pooled engine and a transaction-scoped writers' lock. On both, concurrent writers
queue instead of failing: the queries in this package read, then write, and rely on no
other writer changing the rows in between."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError

# The key of the PostgreSQL advisory lock writers take (any constant; "dockyard" in ASCII).
WRITERS_LOCK = 0x646F636B79617264


def database_url(url: str) -> str:
    """`postgresql://` (and libpq's `postgres://`) mean psycopg 3, the driver Dockyard
    ships; SQLAlchemy would otherwise look for psycopg2."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg://" + url.removeprefix(bare)
    return url


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
        conn.exec_driver_sql("BEGIN IMMEDIATE")
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
    try:
        _begin(conn, writers_lock)
        yield
    except BaseException:
        # On a broken connection the transaction is gone already: keep the first error.
        with suppress(DBAPIError):
            conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT")
