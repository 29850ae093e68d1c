"""A peer region's queue: its outbox consumer drained by a loop of its own, a batch at a
time (each repository's due changes together), sleeping as the outbox's other loops do
when nothing is due (`events.wakeups`), and a moment after each round that sent
something, so that the changes of a burst travel together.
The background work drains the other features' consumers one after the other; a region
that does not answer makes each of its tries wait out the peer time-out, which must not
delay the changes on their way to the other regions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Executor

from dockyard.events import Consumer, Outbox
from dockyard.replication.priority import low_priority_threads

BATCH = 100
# After a round that sent something, a queue waits this long before it claims again,
# unless the round took a whole batch (a backlog, sent at once): the changes made
# meanwhile (a client pushing image after image) go in the next round together, as one
# bundle, and sending leaves the CPU to the pushes in between.
GATHER_SECONDS = 0.2

log = logging.getLogger(__name__)


async def queues(outbox: Outbox, consumers: Sequence[Consumer]) -> None:
    """Every peer region's queue, side by side (one job of the background work), each
    sending in a thread of low CPU priority (`priority`)."""
    threads = low_priority_threads(len(consumers), "replication-queue")
    try:
        await asyncio.gather(*(deliver(outbox, consumer, threads) for consumer in consumers))
    finally:  # stopped: a delivery under way ends in its thread, unwaited for, as before
        threads.shutdown(wait=False)


async def deliver(outbox: Outbox, consumer: Consumer, threads: Executor) -> None:
    idle = outbox.wakeups.idle()
    loop = asyncio.get_running_loop()
    while True:
        try:
            claimed = await loop.run_in_executor(threads, outbox.drain, consumer, BATCH)
        except Exception:
            log.exception("replication queue failed", extra={"fields": {"consumer": consumer.name}})
            claimed = 0
        if claimed:
            idle.worked()
            if claimed < BATCH:
                await asyncio.sleep(GATHER_SECONDS)
        else:
            await idle.sleep()
