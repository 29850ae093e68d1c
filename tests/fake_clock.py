"""`FakeClock`: the time a test sets, for the services that take a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Stands still until a test moves it. Starts at `now`, else at the real time, so
    that file modification times (which only the real clock sets) compare sensibly
    with it."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now
