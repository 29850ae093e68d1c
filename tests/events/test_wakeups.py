"""`events.wakeups`: an idle consumer's sleeps grow only while PostgreSQL announces new
events, and an announcement (an event emitted, a webhook changed) ends them at once; an
event this process commits wakes its own sleepers on any database."""

from __future__ import annotations

import asyncio
import time

from dockyard.events.wakeups import Wakeups
from dockyard.metadata.store import Metadata
from dockyard.metadata.webhooks import WebhookWrites

DEADLINE = 30.0  # seconds; the sleeps under test would last an hour


def test_idle_sleeps_double_up_to_the_idle_limit_only_while_listening(meta: Metadata) -> None:
    wakeups = Wakeups(meta.engine, poll_seconds=0.001, idle_seconds=0.004)
    idle = wakeups.idle()

    async def rounds() -> list[float]:
        timeouts = []
        for _ in range(4):
            timeouts.append(idle.timeout())
            await idle.sleep()
        return timeouts

    async def session() -> None:
        assert await rounds() == [0.001] * 4  # SQLite announces nothing: polls
        wakeups.listening = True
        idle.worked()
        assert await rounds() == [0.001, 0.002, 0.004, 0.004]
        wakeups.listening = False
        assert idle.timeout() == 0.001  # the notifications are lost: poll again

    asyncio.run(session())


async def _listening(wakeups: Wakeups) -> asyncio.Task[None]:
    listener = asyncio.create_task(wakeups.run())
    deadline = time.monotonic() + DEADLINE
    while not wakeups.listening:
        assert time.monotonic() < deadline, "never listened"
        await asyncio.sleep(0.01)
    return listener


def test_announcements_on_postgresql_wake_idle_sleepers(postgres, clock) -> None:
    meta = Metadata(postgres.create_database("wakeups", migrated=True), clock)
    with meta.transaction() as tx:
        registry = tx.create_registry("wakeups", "localhost:1")
    wakeups = Wakeups(meta.engine, poll_seconds=3600, idle_seconds=3600)

    async def session() -> None:
        listener = await _listening(wakeups)
        try:
            idle = wakeups.idle()
            sleeper = asyncio.create_task(idle.sleep())
            await asyncio.sleep(0)
            with meta.transaction() as tx:
                tx.emit(registry.id, "push", "app", {})
            await asyncio.wait_for(sleeper, DEADLINE)
            # Announced while no one slept (a round looking at the database): the next
            # sleep ends at once.
            heard = wakeups.bell()
            with meta.transaction() as tx:
                WebhookWrites(tx).delete(0)
            deadline = time.monotonic() + DEADLINE
            while not heard.is_set():
                assert time.monotonic() < deadline, "the webhook change was not announced"
                await asyncio.sleep(0.01)
            await asyncio.wait_for(idle.sleep(), DEADLINE)
        finally:
            listener.cancel()

    try:
        asyncio.run(session())
    finally:
        meta.close()


def test_an_event_this_process_commits_wakes_its_sleepers_on_sqlite(meta: Metadata) -> None:
    with meta.transaction() as tx:
        registry = tx.create_registry("nudged", "localhost:1")
    wakeups = Wakeups(meta.engine, poll_seconds=3600, idle_seconds=3600)
    meta.on_emitted(wakeups.nudge)

    async def session() -> None:
        sleeper = asyncio.create_task(wakeups.idle().sleep())
        await asyncio.sleep(0)
        with meta.transaction() as tx:  # no event: nothing wakes
            tx.create_registry("quiet", "localhost:2")
        await asyncio.sleep(0.2)
        assert not sleeper.done()
        await asyncio.to_thread(_emit, meta, registry.id)  # from another thread, as a push
        await asyncio.wait_for(sleeper, DEADLINE)

    asyncio.run(session())


def _emit(meta: Metadata, registry_id: int) -> None:
    with meta.transaction() as tx:
        tx.emit(registry_id, "push", "app", {})
