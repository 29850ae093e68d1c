"""The order of tag writes: stamps order by time, then region name; a hybrid clock never
goes back or repeats, and catches up with what it observes (within its limit)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dockyard.common.clock import HybridClock
from dockyard.replication.stamps import ORIGIN, Stamp, wall_of

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def test_stamps_order_by_time_then_region() -> None:
    early, late = Stamp.at(T0, "westus"), Stamp.at(T0 + timedelta(microseconds=1), "eastus")
    assert ORIGIN < early < late
    assert Stamp.at(T0, "eastus") < Stamp.at(T0, "westus")  # a tie: the region decides
    assert max([late, early, Stamp.at(T0, "eastus")]) == late
    assert Stamp.at(T0, "x").moment() == T0
    assert wall_of(T0 + timedelta(microseconds=7)) - wall_of(T0) == 7


def test_stamps_round_trip_and_refuse_what_no_peer_sends() -> None:
    stamp = Stamp.at(T0, "westus")
    assert Stamp.from_json(stamp.as_json()) == stamp
    for wrong in (
        None,
        [],
        {"wall": "1", "region": "x"},
        {"wall": True, "region": "x"},
        {"wall": -1, "region": "x"},
        {"wall": 1, "region": ""},
        {"wall": 1},
    ):
        with pytest.raises(ValueError):
            Stamp.from_json(wrong)


def test_a_hybrid_clock_never_repeats_and_catches_up_with_what_it_observes() -> None:
    physical = [T0]
    clock = HybridClock(lambda: physical[0], max_ahead=timedelta(seconds=60))
    first, second = clock(), clock()
    assert first == T0 and second == T0 + timedelta(microseconds=1)
    physical[0] = T0 - timedelta(seconds=5)  # the host's clock steps back
    assert clock() > second

    # A peer's stamp 10 s ahead: the next time given is after it.
    seen = T0 + timedelta(seconds=10)
    clock.observe(seen)
    assert clock() > seen
    # One further ahead than the limit does not drag the clock along.
    clock.observe(T0 + timedelta(hours=1))
    assert clock() < T0 + timedelta(seconds=11)
