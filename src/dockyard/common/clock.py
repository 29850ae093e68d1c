"""Time as a collaborator, so tests can pass a fixed clock instead of patching.

The server's clock is a `HybridClock`: physical time, but never behind the last time it
gave or a time it was shown (`observe`), and never the same twice. Geo-replication
stamps a tag's write with its transaction's time and orders writes by it; a region
that has applied a peer's write observes its stamp, so a write made here afterwards is
stamped later even when this host's clock runs behind the peer's (a hybrid logical
clock, its logical counter folded into the microseconds)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]

TICK = timedelta(microseconds=1)
# The furthest ahead of physical time a time shown to `observe` may move the clock: a
# peer whose clock is further off does not drag this one along.
MAX_AHEAD = timedelta(seconds=60)


def utc_now() -> datetime:
    return datetime.now(UTC)


class HybridClock:
    """A `Clock` that is strictly increasing in this process and catches up with the
    times it observes (thread-safe)."""

    def __init__(self, physical: Clock = utc_now, max_ahead: timedelta = MAX_AHEAD) -> None:
        self._physical = physical
        self._max_ahead = max_ahead
        self._last = datetime.min.replace(tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        now = self._physical()
        with self._lock:
            self._last = max(now, self._last + TICK)
            return self._last

    def observe(self, moment: datetime) -> None:
        """Never give a time before `moment` again (unless it is too far ahead)."""
        if moment - self._physical() > self._max_ahead:
            return
        with self._lock:
            self._last = max(self._last, moment)
