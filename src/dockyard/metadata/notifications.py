"""PostgreSQL's notifications of the outbox: a writing transaction that adds events or
changes webhooks announces it (`announce`, delivered by PostgreSQL at its commit, to
every node), and the background work listens (`listen`), so that idle consumers sleep
instead of polling the database every second. SQLite has no notifications: there
consumers poll, at no one's cost but their own process's. Never decides what to do when
woken: that is `events.wakeups`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from sqlalchemy import Connection, Engine

log = logging.getLogger("dockyard")

CHANNEL = "dockyard_outbox"
RECONNECT_SECONDS = 5.0
CONNECT_TIMEOUT_SECONDS = 10  # an unreachable server fails the attempt, to be made again


def announce(conn: Connection) -> None:
    """Wake the outbox's listeners when this transaction commits (PostgreSQL folds a
    transaction's announcements into one); nothing on other databases."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"NOTIFY {CHANNEL}")


def can_listen(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


async def listen(
    engine: Engine, heard: Callable[[], None], listening: Callable[[bool], None]
) -> None:
    """Call `heard()` for each announcement, on a connection of its own, until
    cancelled. `listening(True)` once listening (then `heard()` once, for what was
    committed while nobody listened), `listening(False)` when the connection is lost;
    it is opened again every `RECONNECT_SECONDS` meanwhile (one warning per loss, not
    per attempt)."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    warned = False
    while True:
        try:
            connect = psycopg.AsyncConnection.connect(
                conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            )
            async with await connect as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                log.info("listening for outbox announcements")
                warned = False
                listening(True)
                heard()
                async for _ in conn.notifies():
                    heard()
        except psycopg.Error as exc:
            if not warned:
                log.warning(
                    "outbox notifications lost; polling until they are back",
                    extra={"fields": {"error": type(exc).__name__}},
                )
                warned = True
        finally:
            listening(False)
        await asyncio.sleep(RECONNECT_SECONDS)
