"""The outbox contract: claiming events for a named consumer, on every database.

At-least-once delivery with backoff: an event is claimed until a consumer records it
delivered; a failure or an expired lease makes it due again; two claimers, on separate
connections (as separate workers are), never hold the same event at once."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from dockyard.core.events import ManifestDeleted, ManifestPushed, RepositoryDeleted
from dockyard.events import Consumer, Outbox, Subscription, backoff
from dockyard.metadata.store import Metadata

if TYPE_CHECKING:
    from fake_clock import FakeClock


def _emit(meta: Metadata, count: int, action: str = "push") -> list[int]:
    with meta.transaction() as tx:
        reg = tx.create_registry("contoso", "contoso.registry.example")
    for i in range(count):
        with meta.transaction() as tx:
            tx.emit(reg.id, action, "library/app", {"n": i})
    return _ids(meta)


def _push(meta: Metadata, count: int) -> list[int]:
    """`count` pushes, the nth of size n."""
    with meta.transaction() as tx:
        reg = tx.create_registry("contoso", "contoso.registry.example")
    for i in range(count):
        pushed = ManifestPushed(
            registry_id=reg.id, repository="library/app", digest=f"sha256:{i}", size=i
        )
        with meta.transaction() as tx:
            tx.emit(*pushed.to_row())
    return _ids(meta)


def _ids(meta: Metadata) -> list[int]:
    with meta.engine.connect() as conn:
        return [row[0] for row in conn.exec_driver_sql("SELECT id FROM events ORDER BY id")]


def _pushes_to_a_a_b_a(meta: Metadata) -> tuple[int, list[int]]:
    """Four pushes of a new registry, to repositories a, a, b and a: the registry's id
    and the events' ids."""
    with meta.transaction() as tx:
        reg = tx.create_registry("contoso", "contoso.registry.example")
    for repo in ("a", "a", "b", "a"):
        with meta.transaction() as tx:
            pushed = ManifestPushed(registry_id=reg.id, repository=repo, digest="d", size=1)
            tx.emit(*pushed.to_row())
    return reg.id, _ids(meta)


def test_claim_hands_out_each_event_once_oldest_first(meta: Metadata, clock: FakeClock) -> None:
    ids = _emit(meta, 3)
    outbox = Outbox(meta, clock)
    first = outbox.claim("webhooks", limit=2)
    assert [c.event.id for c in first] == ids[:2]
    assert [c.attempt for c in first] == [1, 1]
    assert first[0].event.action == "push"
    assert first[0].event.repository == "library/app"
    assert first[0].event.payload == {"n": 0}
    assert first[0].event.created_at == clock.now
    assert [c.event.id for c in outbox.claim("webhooks")] == ids[2:]
    assert outbox.claim("webhooks") == []


def test_consumers_are_independent(meta: Metadata, clock: FakeClock) -> None:
    ids = _emit(meta, 2)
    outbox = Outbox(meta, clock)
    assert [c.event.id for c in outbox.claim("webhooks")] == ids
    assert [c.event.id for c in outbox.claim("audit")] == ids


def test_delivered_events_are_never_claimed_again(meta: Metadata, clock: FakeClock) -> None:
    ids = _emit(meta, 2)
    outbox = Outbox(meta, clock, lease=timedelta(seconds=30))
    for claimed in outbox.claim("webhooks"):
        outbox.delivered("webhooks", claimed.event.id)
    clock.advance(timedelta(days=1))
    assert outbox.claim("webhooks") == []
    states = outbox.deliveries("webhooks")
    assert [s.event_id for s in states] == ids
    assert all(s.delivered_at is not None and s.attempts == 1 for s in states)
    assert outbox.deliveries("webhooks", pending_only=True) == []


def test_failure_is_retried_after_backoff_and_visible(meta: Metadata, clock: FakeClock) -> None:
    [event_id] = _emit(meta, 1)
    outbox = Outbox(meta, clock)
    [claimed] = outbox.claim("webhooks")
    outbox.failed("webhooks", claimed, "ConnectError: refused")
    [state] = outbox.deliveries("webhooks", pending_only=True)
    assert state.event_id == event_id
    assert state.attempts == 1
    assert state.last_error == "ConnectError: refused"
    assert state.next_attempt_at == clock.now + backoff(1)
    clock.advance(backoff(1) - timedelta(seconds=1))
    assert outbox.claim("webhooks") == []
    clock.advance(timedelta(seconds=1))
    [again] = outbox.claim("webhooks")
    assert (again.event.id, again.attempt) == (event_id, 2)
    outbox.failed("webhooks", again, "still down")
    assert outbox.deliveries("webhooks")[0].next_attempt_at == clock.now + backoff(2)


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3)] == [5, 10, 20]
    assert backoff(50) == timedelta(hours=1)


def test_backoff_bounds_are_the_outbox_s(meta: Metadata, clock: FakeClock) -> None:
    _emit(meta, 1)
    outbox = Outbox(meta, clock, retry_first=timedelta(seconds=1), retry_max=timedelta(seconds=3))
    for attempt, wait in enumerate((1, 2, 3, 3), start=1):
        [claimed] = outbox.claim("webhooks")
        assert claimed.attempt == attempt
        outbox.failed("webhooks", claimed, "down")
        assert outbox.deliveries("webhooks")[0].next_attempt_at == clock.now + timedelta(
            seconds=wait
        )
        clock.advance(timedelta(seconds=wait))


def test_a_subscription_sees_its_registry_s_later_events_of_its_actions(
    meta: Metadata, clock: FakeClock
) -> None:
    with meta.transaction() as tx:
        mine = tx.create_registry("contoso", "contoso.registry.example")
        other = tx.create_registry("fabrikam", "fabrikam.registry.example")
    for registry, action in ((mine, "push"), (mine, "push"), (other, "push"), (mine, "lock")):
        with meta.transaction() as tx:
            tx.emit(registry.id, action, "app", {})
    with meta.engine.connect() as conn:
        ids = [row[0] for row in conn.exec_driver_sql("SELECT id FROM events ORDER BY id")]
    subscription = Subscription(
        registry_id=mine.id, after_event_id=ids[0], actions=frozenset({"push", "delete"})
    )
    outbox = Outbox(meta, clock)
    assert [c.event.id for c in outbox.claim("hook", subscription=subscription)] == [ids[1]]
    # Events outside the subscription never get a delivery row.
    assert [d.event_id for d in outbox.deliveries("hook")] == [ids[1]]
    outbox.forget("hook")
    assert outbox.deliveries("hook") == []


def test_an_ordered_subscription_holds_a_repository_behind_its_failed_event(
    meta: Metadata, clock: FakeClock
) -> None:
    _, (a1, a2, b1, a3) = _pushes_to_a_a_b_a(meta)
    ordered = Subscription(ordered=True)
    outbox = Outbox(meta, clock)
    first = outbox.claim("hook", subscription=ordered)
    assert [c.event.id for c in first] == [a1, b1]  # one per repository at a time
    assert outbox.claim("hook", subscription=ordered) == []  # a1 is leased: a2 waits
    outbox.delivered("hook", b1)
    outbox.failed("hook", first[0], "down")
    assert outbox.claim("hook", subscription=ordered) == []  # a1 backs off: a2 waits
    clock.advance(backoff(1))
    [again] = outbox.claim("hook", subscription=ordered)
    assert (again.event.id, again.attempt) == (a1, 2)
    outbox.delivered("hook", a1)
    assert [c.event.id for c in outbox.claim("hook", subscription=ordered)] == [a2]
    outbox.delivered("hook", a2)
    assert [c.event.id for c in outbox.claim("hook", subscription=ordered)] == [a3]


def test_an_ordered_subscription_in_runs_claims_a_repositorys_due_events_together(
    meta: Metadata, clock: FakeClock
) -> None:
    registry_id, (a1, a2, b1, a3) = _pushes_to_a_a_b_a(meta)
    runs = Subscription(ordered=True, runs=True)
    outbox = Outbox(meta, clock)
    first = outbox.claim("peer", subscription=runs)
    assert [c.event.id for c in first] == [a1, a2, b1, a3]
    outbox.delivered("peer", a1, b1)
    outbox.failed("peer", first[1], "down")  # a2 backs off
    outbox.postpone("peer", first[3], "behind a2")
    clock.advance(backoff(1) / 2)
    with meta.transaction() as tx:
        tx.emit(registry_id, "push", "a", {})
        tx.emit(registry_id, "push", "b", {})
    [b2] = outbox.claim("peer", subscription=runs)  # a's run waits behind a2
    assert b2.event.repository == "b"
    clock.advance(backoff(1))
    again = outbox.claim("peer", subscription=runs)
    assert [c.event.id for c in again][:2] == [a2, a3]
    assert [c.event.repository for c in again] == ["a", "a", "a"]


def test_drain_holds_a_repositorys_later_events_behind_its_failed_one(
    meta: Metadata, clock: FakeClock
) -> None:
    _, (a1, a2, b1, a3) = _pushes_to_a_a_b_a(meta)
    seen: list[int] = []
    down = [a2]

    def handle(envelope) -> None:  # type: ignore[no-untyped-def]
        seen.append(envelope.id)
        if envelope.id in down:
            raise RuntimeError("region down")

    consumer = Consumer("peer", handle, (ManifestPushed,), ordered=True, runs=True)
    outbox = Outbox(meta, clock)
    assert outbox.drain(consumer) == 4
    assert seen == [a1, a2, b1]  # a3 was not sent before a2
    pending = {d.event_id: d for d in outbox.deliveries("peer", pending_only=True)}
    assert set(pending) == {a2, a3}
    assert pending[a3].last_error == f"waits behind event {a2}"
    clock.advance(backoff(1))
    seen.clear()
    down.clear()
    assert outbox.drain(consumer) == 2
    assert seen == [a2, a3] and outbox.deliveries("peer", pending_only=True) == []


def test_an_expired_lease_makes_the_event_due_again(meta: Metadata, clock: FakeClock) -> None:
    [event_id] = _emit(meta, 1)
    outbox = Outbox(meta, clock, lease=timedelta(seconds=60))
    assert len(outbox.claim("webhooks")) == 1  # the worker dies without recording anything
    clock.advance(timedelta(seconds=59))
    assert outbox.claim("webhooks") == []
    clock.advance(timedelta(seconds=1))
    [again] = outbox.claim("webhooks")
    assert (again.event.id, again.attempt) == (event_id, 2)


def test_events_emitted_later_are_claimed_later(meta: Metadata, clock: FakeClock) -> None:
    outbox = Outbox(meta, clock)
    first = _emit(meta, 1)
    assert [c.event.id for c in outbox.claim("webhooks")] == first
    with meta.transaction() as tx:
        tx.emit(1, "delete", "library/app", {})
    [late] = outbox.claim("webhooks")
    assert late.event.action == "delete"


def test_drain_records_success_and_failure(meta: Metadata, clock: FakeClock) -> None:
    ids = _push(meta, 3)
    outbox = Outbox(meta, clock)
    seen: list[int] = []

    def handle(stored) -> None:  # type: ignore[no-untyped-def]
        seen.append(stored.id)
        if stored.event.size == 1:
            raise RuntimeError("endpoint answered 500")

    assert outbox.drain(Consumer("webhooks", handle)) == 3
    assert seen == ids
    [pending] = outbox.deliveries("webhooks", pending_only=True)
    assert pending.event_id == ids[1]
    assert pending.last_error == "RuntimeError: endpoint answered 500"


def test_drain_hands_a_batch_handler_the_whole_batch(meta: Metadata, clock: FakeClock) -> None:
    ids = _push(meta, 4)
    outbox = Outbox(meta, clock)
    batches: list[list[int]] = []

    def handle(event) -> None:  # type: ignore[no-untyped-def]
        raise AssertionError("a batch handler that succeeds takes every event")

    def handle_batch(events) -> None:  # type: ignore[no-untyped-def]
        batches.append([event.id for event in events])

    assert outbox.drain(Consumer("audit", handle, handle_batch=handle_batch)) == 4
    assert batches == [ids]
    assert outbox.deliveries("audit", pending_only=True) == []
    assert outbox.drain(Consumer("audit", handle, handle_batch=handle_batch)) == 0


def test_a_failed_batch_is_delivered_event_by_event(meta: Metadata, clock: FakeClock) -> None:
    ids = _push(meta, 3)
    outbox = Outbox(meta, clock)
    seen: list[int] = []

    def handle(stored) -> None:  # type: ignore[no-untyped-def]
        seen.append(stored.id)
        if stored.event.size == 2:
            raise RuntimeError("this one is broken")

    def handle_batch(events) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("one of these is broken")

    assert outbox.drain(Consumer("audit", handle, handle_batch=handle_batch)) == 3
    assert seen == ids
    [pending] = outbox.deliveries("audit", pending_only=True)
    assert pending.event_id == ids[2]
    assert pending.last_error == "RuntimeError: this one is broken"


def test_a_consumer_is_handed_only_the_classes_it_takes(meta: Metadata, clock: FakeClock) -> None:
    """Its subscription claims their stored actions only; an event of a class sharing
    one (a repository's delete beside a manifest's) is marked delivered unhandled."""
    with meta.transaction() as tx:
        reg = tx.create_registry("contoso", "contoso.registry.example")
    common = {"registry_id": reg.id, "repository": "app"}
    for event in (
        ManifestPushed(**common, digest="sha256:a", size=1),
        ManifestDeleted(**common, digest="sha256:a", tags=()),
        RepositoryDeleted(**common, manifests=(), tags=()),
    ):
        with meta.transaction() as tx:
            tx.emit(*event.to_row())
    _, deleted, repository_deleted = _ids(meta)
    seen: list[object] = []
    outbox = Outbox(meta, clock)
    assert outbox.drain(Consumer("deletes", seen.append, (ManifestDeleted,))) == 2
    assert [stored.id for stored in seen] == [deleted]  # type: ignore[attr-defined]
    states = outbox.deliveries("deletes")
    assert [s.event_id for s in states] == [deleted, repository_deleted]
    assert all(s.delivered_at is not None for s in states)


def test_a_row_that_does_not_decode_is_a_failed_delivery(meta: Metadata, clock: FakeClock) -> None:
    [event_id] = _emit(meta, 1)  # a push without its digest
    outbox = Outbox(meta, clock)
    assert outbox.drain(Consumer("audit", lambda stored: None)) == 1
    [pending] = outbox.deliveries("audit", pending_only=True)
    assert pending.event_id == event_id
    assert pending.last_error == "KeyError: 'digest'"


def test_two_claimers_never_get_the_same_event(
    database_url: str, meta: Metadata, clock: FakeClock
) -> None:
    """Two workers (each its own `Metadata`, so its own connections) claim small batches
    at once until the outbox is empty: every event is claimed exactly once."""
    ids = _emit(meta, 60)
    workers = [Metadata(database_url, clock) for _ in range(2)]
    claimed: list[list[int]] = [[], []]
    start = threading.Barrier(2)

    def work(n: int) -> None:
        outbox = Outbox(workers[n], clock)
        start.wait()
        while batch := outbox.claim("webhooks", limit=3):
            claimed[n].extend(c.event.id for c in batch)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for worker in workers:
            worker.close()
    assert sorted(claimed[0] + claimed[1]) == ids
    if not database_url.startswith("sqlite"):
        # SKIP LOCKED lets both work at once; SQLite's write lock serializes the claims,
        # and one claimer may well take every batch before the other wakes.
        assert claimed[0] and claimed[1], "both claimers got work"
