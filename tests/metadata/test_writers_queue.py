"""The SQLite writers' queue: writers take turns on an flock, and an event loop waits for
its turn without stopping."""

from __future__ import annotations

import asyncio
import fcntl
import os
import threading
import time
from pathlib import Path

import pytest

from dockyard.metadata.engine import WritersQueue, make_engine, writers_queue


def _held_elsewhere(path: Path) -> int:
    """An fd holding the turn, as another process's writer would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_file_backed_sqlite_gets_a_queue_beside_the_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert writers_queue(engine) is not None
    finally:
        engine.dispose()


def test_threads_take_turns(tmp_path: Path) -> None:
    queue = WritersQueue(str(tmp_path / "writers"))
    inside: list[int] = []
    overlaps: list[int] = []

    def write() -> None:
        for _ in range(20):
            with queue.hold():
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(len(inside))
                time.sleep(0.0005)
                inside.pop()

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []


def test_a_thread_holding_its_turn_may_write_again_inside_it(tmp_path: Path) -> None:
    queue = WritersQueue(str(tmp_path / "writers"))
    with queue.hold(), queue.hold():
        pass
    with queue.hold():  # given back: free again
        pass


def test_the_event_loop_serves_others_while_its_writer_waits(tmp_path: Path) -> None:
    path = tmp_path / "writers"
    queue = WritersQueue(str(path))
    other = _held_elsewhere(path)

    async def main() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.3, os.close, other)
        async with queue.turn():
            seen = ticks
        ticker.cancel()
        return seen

    assert asyncio.run(main()) >= 10


def test_a_sync_write_on_the_event_loop_never_waits_for_the_queue(tmp_path: Path) -> None:
    """It could wait for a turn a coroutine of its own loop is about to take: it goes to
    SQLite's busy handler instead."""
    path = tmp_path / "writers"
    queue = WritersQueue(str(path))
    other = _held_elsewhere(path)

    async def main() -> float:
        started = time.monotonic()
        with queue.hold():
            return time.monotonic() - started

    try:
        assert asyncio.run(main()) < 0.5
    finally:
        os.close(other)


def test_a_writer_cancelled_while_waiting_gives_the_turn_back(tmp_path: Path) -> None:
    path = tmp_path / "writers"
    queue = WritersQueue(str(path))
    other = _held_elsewhere(path)

    async def main() -> None:
        async def wait_for_turn() -> None:
            async with queue.turn():
                pytest.fail("the turn was never free")

        waiting = asyncio.create_task(wait_for_turn())
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        os.close(other)  # the cancelled waiter's thread now gets the turn, then gives it back
        async with asyncio.timeout(5):
            async with queue.turn():
                pass

    asyncio.run(main())


def test_a_lock_file_that_cannot_be_opened_leaves_writers_to_sqlite(tmp_path: Path) -> None:
    queue = WritersQueue(str(tmp_path / "no such directory" / "writers"))

    async def main() -> None:
        async with queue.turn():
            pass

    with queue.hold():
        pass
    asyncio.run(main())
