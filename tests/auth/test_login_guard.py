"""`auth/login_guard.py` on real SQLite with a clock the test moves: lockouts per
(registry, identity, address), shared by every node, cleared by success, and an audit row
for every attempt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from databases import copy_database

from dockyard.auth.login_guard import LoginGuard, LoginResult
from dockyard.common.errors import TooManyRequests
from dockyard.metadata import schema
from dockyard.metadata.logins import LoginStore
from dockyard.metadata.store import Metadata

ADDRESS = "192.0.2.1"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Limits:
    max_failed_logins: int = 3
    failed_login_window_seconds: int = 60
    lockout_seconds: int = 300


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta.db'}"


@pytest.fixture
def meta(url: str, clock: FakeClock, migrated_sqlite: Path) -> Iterator[Metadata]:
    copy_database(migrated_sqlite, Path(url.removeprefix("sqlite:///")))
    metadata = Metadata(url, clock)
    yield metadata
    metadata.close()


@pytest.fixture
def registry_id(meta: Metadata) -> int:
    with meta.transaction() as tx:
        return tx.create_registry("contoso", "contoso.example").id


@pytest.fixture
def guard(meta: Metadata, clock: FakeClock) -> LoginGuard:
    return LoginGuard(meta, Limits(), clock)


def fail(guard: LoginGuard, registry_id: int, times: int, identity: str = "alice") -> None:
    for _ in range(times):
        guard.check(registry_id, identity, ADDRESS)
        guard.failed(registry_id, identity, ADDRESS, "password", "wrong password", "ua/1")


def test_the_nth_failure_locks_the_pair_out_for_the_lockout(
    guard: LoginGuard, registry_id: int, clock: FakeClock
) -> None:
    fail(guard, registry_id, 2)
    guard.check(registry_id, "alice", ADDRESS)  # two failures: still allowed
    fail(guard, registry_id, 1)
    clock.advance(10)
    with pytest.raises(TooManyRequests) as refused:
        guard.check(registry_id, "alice", ADDRESS)
    assert refused.value.code == "TOOMANYREQUESTS"
    assert refused.value.retry_after == 290
    assert "too many failed logins for 'alice' from 192.0.2.1" in refused.value.message
    clock.advance(289.5)
    with pytest.raises(TooManyRequests) as refused:
        guard.check(registry_id, "alice", ADDRESS)
    assert refused.value.retry_after == 1  # rounded up: never "retry in 0 seconds"
    clock.advance(0.5)
    guard.check(registry_id, "alice", ADDRESS)


def test_after_the_lockout_counting_starts_again(
    guard: LoginGuard, registry_id: int, clock: FakeClock
) -> None:
    fail(guard, registry_id, 3)
    clock.advance(300)
    fail(guard, registry_id, 2)
    guard.check(registry_id, "alice", ADDRESS)
    fail(guard, registry_id, 1)
    with pytest.raises(TooManyRequests):
        guard.check(registry_id, "alice", ADDRESS)


def test_failures_older_than_the_window_do_not_count(
    guard: LoginGuard, registry_id: int, clock: FakeClock
) -> None:
    fail(guard, registry_id, 2)
    clock.advance(60)
    fail(guard, registry_id, 2)
    guard.check(registry_id, "alice", ADDRESS)


def test_success_clears_the_count(guard: LoginGuard, registry_id: int) -> None:
    fail(guard, registry_id, 2)
    guard.succeeded(registry_id, "alice", ADDRESS, "password", "ua/1")
    fail(guard, registry_id, 2)
    guard.check(registry_id, "alice", ADDRESS)


def test_the_lock_is_per_identity_address_and_registry(
    guard: LoginGuard, meta: Metadata, registry_id: int
) -> None:
    with meta.transaction() as tx:
        other_registry = tx.create_registry("fabrikam", "fabrikam.example").id
    fail(guard, registry_id, 3)
    with pytest.raises(TooManyRequests):
        guard.check(registry_id, "ALICE", ADDRESS)  # names are case-folded
    guard.check(registry_id, "bob", ADDRESS)
    guard.check(registry_id, "alice", "192.0.2.2")
    guard.check(other_registry, "alice", ADDRESS)


def test_the_count_is_shared_by_every_node(
    url: str, guard: LoginGuard, registry_id: int, clock: FakeClock
) -> None:
    other_meta = Metadata(url, clock)  # another node, its own connection
    try:
        other_node = LoginGuard(other_meta, Limits(), clock)
        guard.failed(registry_id, "alice", ADDRESS, "password")
        other_node.failed(registry_id, "alice", ADDRESS, "password")
        guard.failed(registry_id, "alice", ADDRESS, "password")
        with pytest.raises(TooManyRequests):
            other_node.check(registry_id, "alice", ADDRESS)
    finally:
        other_meta.close()


def test_failures_racing_a_lock_do_not_extend_it(
    guard: LoginGuard, registry_id: int, clock: FakeClock
) -> None:
    fail(guard, registry_id, 3)
    clock.advance(100)
    # A request that passed check() before the lock began fails after it.
    guard.failed(registry_id, "alice", ADDRESS, "password")
    with pytest.raises(TooManyRequests) as refused:
        guard.check(registry_id, "alice", ADDRESS)
    assert refused.value.retry_after == 200


def test_every_attempt_is_an_event(
    guard: LoginGuard, meta: Metadata, registry_id: int, clock: FakeClock
) -> None:
    guard.succeeded(registry_id, "alice", ADDRESS, "password", "docker/27")
    clock.advance(1)
    fail(guard, registry_id, 3)
    clock.advance(1)
    with pytest.raises(TooManyRequests):
        guard.check(registry_id, "alice", ADDRESS, "token", "docker/27")
    events = LoginStore(meta).events(registry_id)
    assert [e.result for e in events] == ["429", "401", "401", "401", "200"]
    throttled, failed, *_, succeeded = events
    assert (throttled.identity, throttled.method, throttled.caller_ip) == (
        "alice",
        "token",
        ADDRESS,
    )
    assert throttled.description == "locked out after 3 failed logins"
    assert throttled.user_agent == "docker/27"
    assert (failed.description, failed.user_agent) == ("wrong password", "ua/1")
    assert succeeded.time == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert succeeded.description is None


def test_untrusted_sizes_are_clipped_and_long_names_still_count(
    guard: LoginGuard, meta: Metadata, registry_id: int
) -> None:
    huge = "x" * 10_000
    fail(guard, registry_id, 3, identity=huge)
    with pytest.raises(TooManyRequests):
        guard.check(registry_id, huge, ADDRESS)
    guard.check(registry_id, "x" * 9_999, ADDRESS)  # another name, another key
    guard.record(registry_id, "bob", None, "m" * 100, LoginResult.FAILED)
    latest = LoginStore(meta).events(registry_id, limit=1)[0]
    assert (latest.caller_ip, len(latest.method)) == ("unknown", 32)
    assert all(len(e.identity) <= 255 for e in LoginStore(meta).events(registry_id))


def test_expired_counters_are_removed_by_later_failures(
    guard: LoginGuard, meta: Metadata, registry_id: int, clock: FakeClock
) -> None:
    fail(guard, registry_id, 1, identity="alice")
    fail(guard, registry_id, 3, identity="carol")  # locked
    clock.advance(61)  # alice's window is over, carol's lock is not
    fail(guard, registry_id, 1, identity="bob")
    with meta.engine.connect() as conn:
        keys = {row.key for row in conn.execute(schema.login_failures.select())}
    assert keys == {f"{registry_id}|{ADDRESS}|carol", f"{registry_id}|{ADDRESS}|bob"}


def test_an_account_counts_whatever_name_and_registry_it_was_tried_under(
    guard: LoginGuard, meta: Metadata, registry_id: int
) -> None:
    with meta.transaction() as tx:
        other_registry = tx.create_registry("fabrikam", "fabrikam.example").id
    account = "identity:1234"
    for registry, name in ((registry_id, "client-id"), (registry_id, "builder")):
        guard.check(registry, name, ADDRESS, account=account)
        guard.failed(registry, name, ADDRESS, "password", account=account)
    guard.failed(other_registry, "builder", ADDRESS, "password", account=account)
    with pytest.raises(TooManyRequests):
        guard.check(other_registry, "client-id", ADDRESS, account=account)
    guard.check(registry_id, "client-id", ADDRESS)  # the bare name is another count
    guard.check(registry_id, "builder", "192.0.2.2", account=account)
