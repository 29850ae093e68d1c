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

from dockyard.events import Consumer, Outbox

BATCH = 100
# After a round that sent something, a queue waits this long before it claims again,
# unless the round took a whole batch (a backlog, sent at once): the changes made
# meanwhile (a client pushing image after image) go in the next round together, as one
# bundle, and sending leaves the CPU to the pushes in between.
GATHER_SECONDS = 0.2

log = logging.getLogger(__name__)


async def queues(outbox: Outbox, consumers: Sequence[Consumer]) -> None:
    """Every peer region's queue, side by side (one job of the background work)."""
    await asyncio.gather(*(deliver(outbox, consumer) for consumer in consumers))


async def deliver(outbox: Outbox, consumer: Consumer) -> None:
    idle = outbox.wakeups.idle()
    while True:
        try:
            claimed = await asyncio.to_thread(outbox.drain, consumer, BATCH)
        except Exception:
            log.exception("replication queue failed", extra={"fields": {"consumer": consumer.name}})
            claimed = 0
        if claimed:
            idle.worked()
            if claimed < BATCH:
                await asyncio.sleep(GATHER_SECONDS)
        else:
            await idle.sleep()
