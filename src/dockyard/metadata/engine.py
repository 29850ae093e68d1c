"""Engine construction per database kind. SQLite gets WAL, a busy timeout and explicit
`BEGIN IMMEDIATE` for writers, so concurrent writers queue instead of failing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event


def make_engine(url: str) -> Engine:
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


@contextmanager
def write_transaction(conn: Connection) -> Iterator[None]:
    """One write transaction on an autocommit connection: committed on success, rolled
    back on error. SQLite takes the write lock up front (`BEGIN IMMEDIATE`), so two
    writers queue on the busy timeout instead of one failing on lock upgrade."""
    conn.exec_driver_sql("BEGIN IMMEDIATE" if is_sqlite(conn.engine) else "BEGIN")
    try:
        yield
    except BaseException:
        conn.exec_driver_sql("ROLLBACK")
        raise
    conn.exec_driver_sql("COMMIT")
