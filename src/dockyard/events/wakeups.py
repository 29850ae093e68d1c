"""`Wakeups`: how long the outbox's idle consumers sleep, and what wakes them.

A consumer that found nothing to do sleeps `poll_seconds` before it looks again. Where
the database announces new events (PostgreSQL's notifications,
`metadata.notifications`), each idle round doubles that sleep up to `idle_seconds`,
and an announcement ends it at once: an idle worker then costs the database a few
transactions a minute instead of several a second, and an event is handled as soon as
its transaction commits. An event this process commits wakes its own consumers
(`nudge`) on any database, so on SQLite too the process that took a push delivers it
at once; other processes see it at their next look. The rounds that look anyway catch
a failed delivery's retry (due `[outbox] retry_first_seconds` after it, and doubling)
and an announcement lost
while the listening connection was down; while it is down, consumers poll every
`poll_seconds` as on SQLite."""

from __future__ import annotations

import asyncio
import weakref
from contextlib import suppress

from sqlalchemy import Engine

from dockyard.metadata.notifications import can_listen, listen

# How long after this process commits an event its sleeping consumers wake: the events
# of a burst are then handled in one round, not one round each.
NUDGE_GAP_SECONDS = 0.05


class Wakeups:
    """This process's listening (`run`, a background task) and the consumers' sleeps
    (`idle`), one per `Outbox`."""

    def __init__(self, engine: Engine, poll_seconds: float, idle_seconds: float) -> None:
        self._engine = engine
        self.poll_seconds = poll_seconds
        self.idle_seconds = max(idle_seconds, poll_seconds)
        self.listening = False
        # Per event loop (tests run several): the event the next announcement sets.
        self._bells: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = (
            weakref.WeakKeyDictionary()
        )
        self._pending: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    def bell(self) -> asyncio.Event:
        """The event the next announcement sets, in this event loop."""
        loop = asyncio.get_running_loop()
        bell = self._bells.get(loop)
        if bell is None:
            bell = self._bells[loop] = asyncio.Event()
        return bell

    def _heard(self) -> None:
        """An announcement: wake every sleeper of this loop; later ones wait for the next."""
        loop = asyncio.get_running_loop()
        bell = self._bells.get(loop)
        if bell is not None:
            bell.set()
        self._bells[loop] = asyncio.Event()

    def nudge(self) -> None:
        """This process committed an event (`Metadata.on_emitted`, from any thread):
        its sleeping consumers wake, as an announcement would wake them, after at most
        `NUDGE_GAP_SECONDS` so that a burst of pushes is handled in one round."""
        try:
            loops = list(self._bells)
        except RuntimeError:  # changed by its loop's thread meanwhile: a later look finds it
            return
        for loop in loops:
            if not loop.is_closed():
                with suppress(RuntimeError):  # closed meanwhile
                    loop.call_soon_threadsafe(self._nudged, loop)

    def _nudged(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop not in self._pending:
            self._pending.add(loop)
            loop.call_later(NUDGE_GAP_SECONDS, self._ring, loop)

    def _ring(self, loop: asyncio.AbstractEventLoop) -> None:
        self._pending.discard(loop)
        self._heard()

    def _listening(self, listening: bool) -> None:
        self.listening = listening

    @property
    def announced(self) -> bool:
        """Whether the database announces new events (PostgreSQL): `run` has work."""
        return can_listen(self._engine)

    async def run(self) -> None:
        """Listen for announcements until cancelled (nothing to do where the database
        makes none)."""
        if self.announced:
            await listen(self._engine, self._heard, self._listening)

    def idle(self) -> Idle:
        """The sleeps of one consumer's loop."""
        return Idle(self)


class Idle:
    """One consumer loop's sleeps: `worked()` after a round that found something,
    `await sleep()` after one that did not. An announcement made while the round ran
    ends the sleep at once (the round may have looked before its transaction
    committed): the bell a sleep waits for is the one taken when the last sleep ended."""

    def __init__(self, wakeups: Wakeups) -> None:
        self._wakeups = wakeups
        self._rounds = 0  # idle rounds in a row
        self._bell: asyncio.Event | None = None

    def worked(self) -> None:
        self._rounds = 0

    def timeout(self) -> float:
        """The next idle sleep, in seconds: `poll_seconds`, doubling per idle round up
        to `idle_seconds` while announcements are heard."""
        wakeups = self._wakeups
        if not wakeups.listening:
            return wakeups.poll_seconds
        return min(wakeups.poll_seconds * 2 ** min(self._rounds, 30), wakeups.idle_seconds)

    async def sleep(self) -> None:
        bell = self._bell or self._wakeups.bell()
        timeout = self.timeout()
        self._rounds += 1
        with suppress(TimeoutError):
            await asyncio.wait_for(bell.wait(), timeout)
        self._bell = self._wakeups.bell()
