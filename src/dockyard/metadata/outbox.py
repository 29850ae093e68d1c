"""Queries of the outbox's delivery state (`event_deliveries`): which events a consumer
has still to handle, claimed so that several workers share the outbox without handing
one event to two of them at once. The retry policy lives in `dockyard.events`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import and_, bindparam, delete, exists, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.metadata import schema as t
from dockyard.metadata.engine import write_transaction
from dockyard.metadata.store import Metadata

_e, _d = t.events, t.event_deliveries


@dataclass(frozen=True)
class EventRecord:
    id: int
    registry_id: int
    action: str
    repository: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Subscription:
    """Which events a consumer gets, and in what order. The default: every event, each
    due one oldest first and retried on its own."""

    registry_id: int | None = None  # only this registry's events
    after_event_id: int = 0  # only events after this one (a consumer made later)
    actions: frozenset[str] | None = None  # only these actions
    # In order per (registry, repository): an event is not claimed while an earlier one
    # of its repository waits (for a retry, or in another claimer's lease).
    ordered: bool = False
    # With `ordered`: a repository's due events are claimed together, oldest first (a
    # run, for a consumer that sends them as one; `Outbox.drain` holds back the later
    # ones when one fails), not one per repository per claim.
    runs: bool = False


EVERY_EVENT = Subscription()


@dataclass(frozen=True)
class ClaimedEvent:
    event: EventRecord
    attempt: int  # 1 on the first delivery


@dataclass(frozen=True)
class DeliveryRecord:
    event_id: int
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None
    last_error: str | None


class OutboxStore:
    """Each method is one short transaction of its own (never inside a registry change),
    on PostgreSQL without the writers' lock: claims lock only the delivery rows they take
    (`FOR UPDATE SKIP LOCKED`), so claimers on every node pass each other by."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def claim(
        self,
        consumer: str,
        now: datetime,
        lease: timedelta,
        limit: int,
        subscription: Subscription = EVERY_EVENT,
    ) -> list[ClaimedEvent]:
        """Up to `limit` events due for `consumer`, oldest first, each leased until
        `now + lease` (delivered or failed by then, or due again)."""
        with self._meta.connection() as conn:
            postgresql = conn.dialect.name == "postgresql"
            module = postgresql_insert if postgresql else sqlite_insert
            due = (
                select(_d.c.event_id, _d.c.attempts)
                .where(
                    _d.c.consumer == consumer,
                    _d.c.delivered_at.is_(None),
                    _d.c.next_attempt_at <= now,
                )
                .order_by(_d.c.next_attempt_at, _d.c.event_id)
                .limit(limit)
            )
            if subscription.ordered and subscription.runs:
                due = (
                    due.join(_e, _e.c.id == _d.c.event_id)
                    .where(~_earlier_waiting(consumer, not_due_after=now))
                    .order_by(None)
                    .order_by(_d.c.event_id)
                )
            elif subscription.ordered:
                due = due.join(_e, _e.c.id == _d.c.event_id).where(~_earlier_waiting(consumer))
            if postgresql:
                # Rows another claimer holds are skipped; rows it has just leased fail the
                # `next_attempt_at` test when re-checked after its commit.
                due = due.with_for_update(skip_locked=True, of=_d)
            with write_transaction(conn, writers_lock=False):
                if postgresql and subscription.runs:
                    # Runs are claimed one claimer at a time: another's lease, not yet
                    # committed, would not hold back the later events of its runs.
                    conn.execute(_ONE_CLAIMER, {"consumer": consumer})
                seen = conn.execute(_LAST_ENQUEUED, {"consumer": consumer}).scalar() or 0
                enqueue = module(_d).from_select(
                    ["consumer", "event_id", "attempts", "next_attempt_at"],
                    _unseen(max(seen, subscription.after_event_id), subscription),
                )
                conn.execute(enqueue.on_conflict_do_nothing(), {"consumer": consumer, "now": now})
                taken = {event_id: attempts + 1 for event_id, attempts in conn.execute(due)}
                if not taken:
                    return []
                conn.execute(
                    update(_d)
                    .where(_d.c.consumer == consumer, _d.c.event_id.in_(list(taken)))
                    .values(attempts=_d.c.attempts + 1, next_attempt_at=now + lease)
                )
                rows = conn.execute(
                    select(
                        _e.c.id,
                        _e.c.registry_id,
                        _e.c.action,
                        _e.c.repository,
                        _e.c.payload,
                        _e.c.created_at,
                    )
                    .where(_e.c.id.in_(list(taken)))
                    .order_by(_e.c.id)
                ).all()
            return [
                ClaimedEvent(
                    EventRecord(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5]),
                    taken[row[0]],
                )
                for row in rows
            ]

    def forget(self, consumer: str) -> None:
        """Drop a consumer's delivery state (the consumer is gone for good)."""
        with self._meta.connection() as conn, write_transaction(conn, writers_lock=False):
            conn.execute(delete(_d).where(_d.c.consumer == consumer))

    def delivered(self, consumer: str, event_ids: Sequence[int], now: datetime) -> None:
        """Mark these events delivered, in one statement: a batch's marks cost as much
        as one event's."""
        self._set(consumer, event_ids, delivered_at=now, last_error=None)

    def failed(self, consumer: str, event_id: int, error: str, retry_at: datetime) -> None:
        self._set(consumer, [event_id], next_attempt_at=retry_at, last_error=error[:4000])

    def _set(self, consumer: str, event_ids: Sequence[int], **values: Any) -> None:
        if not event_ids:
            return
        with self._meta.connection() as conn, write_transaction(conn, writers_lock=False):
            conn.execute(
                update(_d).where(_d.c.consumer == consumer, _d.c.event_id.in_(event_ids)),
                values,
            )

    def deliveries(self, consumer: str, pending_only: bool = False) -> list[DeliveryRecord]:
        """The consumer's delivery state, oldest event first: what was delivered, what
        waits for a retry and why."""
        query = select(
            _d.c.event_id, _d.c.attempts, _d.c.next_attempt_at, _d.c.delivered_at, _d.c.last_error
        ).where(_d.c.consumer == consumer)
        if pending_only:
            query = query.where(_d.c.delivered_at.is_(None))
        with self._meta.connection() as conn:
            return [DeliveryRecord(*row) for row in conn.execute(query.order_by(_d.c.event_id))]


# A PostgreSQL lock, until the claim's commit, on claiming for one consumer.
_ONE_CLAIMER = text("SELECT pg_advisory_xact_lock(hashtext(:consumer))")

# The newest event a consumer has a delivery row for (an index lookup on the key).
_LAST_ENQUEUED = select(func.max(_d.c.event_id)).where(
    _d.c.consumer == bindparam("consumer", type_=_d.c.consumer.type)
)


def _unseen(after: int, subscription: Subscription) -> Any:
    """The subscription's events after event `after` that the consumer has no delivery
    row for yet, as rows for `event_deliveries` (due now). Only events after the newest
    one enqueued are read, not the whole outbox on every poll: events commit in the
    order of their ids (every change that emits one holds the writers' lock until its
    commit), so an event older than an enqueued one was visible when that one was
    enqueued, and was enqueued with it or is not subscribed. Concurrent claimers insert
    the same rows: the second one's are ignored."""
    return (
        select(
            bindparam("consumer", type_=_d.c.consumer.type),
            _e.c.id,
            literal(0, type_=_d.c.attempts.type),
            bindparam("now", type_=_d.c.next_attempt_at.type),
        )
        .where(
            _e.c.id > after,
            ~exists().where(
                and_(
                    _d.c.consumer == bindparam("consumer", type_=_d.c.consumer.type),
                    _d.c.event_id == _e.c.id,
                )
            ),
            *_subscribed(subscription),
        )
        .order_by(_e.c.id)
    )


def _subscribed(subscription: Subscription) -> list[Any]:
    """The conditions on `events` of a subscription's events (its `after_event_id` is
    applied by `_unseen`)."""
    conditions: list[Any] = []
    if subscription.registry_id is not None:
        conditions.append(_e.c.registry_id == subscription.registry_id)
    if subscription.actions is not None:
        conditions.append(_e.c.action.in_(sorted(subscription.actions)))
    return conditions


def _earlier_waiting(consumer: str, not_due_after: datetime | None = None) -> Any:
    """An earlier event of the same repository that `consumer` has not delivered yet
    (`_d` and `_e` being the candidate's delivery row and event); with `not_due_after`,
    only one not due then (backing off, or leased): a due one is claimed with it, before
    it in event order."""
    earlier, earlier_event = _d.alias("earlier"), _e.alias("earlier_event")
    conditions = [
        earlier.c.consumer == consumer,
        earlier.c.delivered_at.is_(None),
        earlier.c.event_id < _d.c.event_id,
        earlier_event.c.id == earlier.c.event_id,
        earlier_event.c.registry_id == _e.c.registry_id,
        earlier_event.c.repository == _e.c.repository,
    ]
    if not_due_after is not None:
        conditions.append(earlier.c.next_attempt_at > not_due_after)
    return exists().where(*conditions)
