"""`Outbox`: claim a batch of events for a named consumer, hand each to the consumer's
handler as its typed event (`core.events`), record the outcome. At-least-once: an event
is delivered again if its handler fails or its worker dies before recording success, so
handlers must be idempotent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from dockyard.core.events import Envelope, Event, actions, from_row
from dockyard.events.wakeups import Wakeups
from dockyard.metadata.outbox import (
    EVERY_EVENT,
    ClaimedEvent,
    DeliveryRecord,
    OutboxStore,
    Subscription,
)
from dockyard.metadata.store import Clock, Metadata

log = logging.getLogger("dockyard.events")

BACKOFF_FIRST = timedelta(seconds=5)
BACKOFF_MAX = timedelta(hours=1)
LEASE = timedelta(minutes=5)


def backoff(
    attempt: int, first: timedelta = BACKOFF_FIRST, most: timedelta = BACKOFF_MAX
) -> timedelta:
    """The wait after failed attempt number `attempt` (1, 2, ...): doubling from `first`
    (5 s), at most `most` (an hour)."""
    return min(first * 2 ** min(max(attempt - 1, 0), 20), most)


@dataclass(frozen=True)
class Consumer:
    """A consumer of the outbox, declared: its name (the key of its delivery state), its
    handler, and the event classes it takes (subclasses included: `ManifestPushed`
    takes `TagMoved` too). The outbox claims only the stored actions of those classes;
    an event of another class that shares one (a `RepositoryDeleted` for a consumer of
    `ManifestDeleted`) is marked delivered unhandled."""

    name: str
    handle: Callable[[Envelope], None]
    takes: tuple[type[Event], ...] = (Event,)  # every event
    # A whole batch at once (the audit log writes its rows in one transaction); if it
    # raises, the batch goes event by event to `handle`, so only the failing are retried.
    handle_batch: Callable[[Sequence[Envelope]], None] | None = None
    # In order per repository (`Subscription.ordered`): an event waits while an earlier
    # one of its repository is retried (replication, where order decides the outcome).
    ordered: bool = False
    # With `ordered`: a repository's due events claimed together (`Subscription.runs`),
    # for a `handle_batch` that sends them as one. Handled one by one, an event whose
    # earlier one of the same repository failed waits behind it, unhandled.
    runs: bool = False

    @property
    def subscription(self) -> Subscription:
        return Subscription(actions=actions(self.takes), ordered=self.ordered, runs=self.runs)


class Outbox:
    def __init__(
        self,
        meta: Metadata,
        clock: Clock,
        lease: timedelta = LEASE,
        retry_first: timedelta = BACKOFF_FIRST,
        retry_max: timedelta = BACKOFF_MAX,
        poll_seconds: float = 1.0,
        idle_seconds: float = 30.0,
    ) -> None:
        self._store = OutboxStore(meta)
        # What the consumers' loops sleep on (`background.drain_outbox`, webhooks').
        self.wakeups = Wakeups(meta.engine, poll_seconds, idle_seconds)
        meta.on_emitted(self.wakeups.nudge)
        self._clock = clock
        self.lease = lease
        self.retry_first = retry_first
        self.retry_max = retry_max

    def claim(
        self, consumer: str, limit: int = 100, subscription: Subscription = EVERY_EVENT
    ) -> list[ClaimedEvent]:
        """Events due for `consumer`, leased to the caller: deliver each, then call
        `delivered` or `failed`. Two claimers never hold the same event at once."""
        return self._store.claim(consumer, self._clock(), self.lease, limit, subscription)

    def delivered(self, consumer: str, *event_ids: int) -> None:
        self._store.delivered(consumer, event_ids, self._clock())

    def failed(self, consumer: str, claimed: ClaimedEvent, error: str) -> None:
        retry_at = self._clock() + backoff(claimed.attempt, self.retry_first, self.retry_max)
        self._store.failed(consumer, claimed.event.id, error, retry_at)

    def postpone(self, consumer: str, claimed: ClaimedEvent, reason: str) -> None:
        """Try the event again after `retry_first`, without doubling: it waits for
        something to happen elsewhere (a regional webhook, for its region to hold the
        image), not for a failure to clear, so the wait does not grow with the attempts."""
        self._store.failed(consumer, claimed.event.id, reason, self._clock() + self.retry_first)

    def forget(self, consumer: str) -> None:
        """Drop the delivery state of a consumer that is gone for good."""
        self._store.forget(consumer)

    def deliveries(self, consumer: str, pending_only: bool = False) -> list[DeliveryRecord]:
        return self._store.deliveries(consumer, pending_only)

    def drain(self, consumer: Consumer, limit: int = 100) -> int:
        """Claim one batch for `consumer` and run its handler on each event; returns how
        many were claimed. A handler's exception, or a row that does not decode, is
        recorded as the event's failure, never raised.

        The batch's deliveries are marked together at the end (one statement, where a
        mark per event cost more than the audit consumer's own work): a process that
        dies meanwhile has those events delivered again, so handlers are idempotent, as
        they already had to be for a death between handling and marking."""
        batch = self.claim(consumer.name, limit, consumer.subscription)
        done: list[int] = []
        due: list[tuple[ClaimedEvent, Envelope]] = []
        for claimed in batch:
            try:
                envelope = from_row(claimed.event)
            except (KeyError, TypeError, ValueError) as exc:
                self._failed(consumer, claimed, exc)
            else:
                if isinstance(envelope.event, consumer.takes):
                    due.append((claimed, envelope))
                else:
                    done.append(claimed.event.id)
        if due and consumer.handle_batch is not None:
            try:
                consumer.handle_batch([envelope for _, envelope in due])
            except Exception:
                log.warning("batch delivery failed; delivering one by one", exc_info=True)
            else:
                self.delivered(consumer.name, *done, *(claimed.event.id for claimed, _ in due))
                return len(batch)
        stopped: dict[tuple[int, str], int] = {}  # repository: its failed event
        for claimed, envelope in due:
            key = (claimed.event.registry_id, claimed.event.repository)
            if consumer.ordered and key in stopped:
                self.postpone(consumer.name, claimed, f"waits behind event {stopped[key]}")
                continue
            try:
                consumer.handle(envelope)
            except Exception as exc:
                self._failed(consumer, claimed, exc)
                stopped[key] = claimed.event.id
            else:
                done.append(claimed.event.id)
        self.delivered(consumer.name, *done)
        return len(batch)

    def _failed(self, consumer: Consumer, claimed: ClaimedEvent, exc: Exception) -> None:
        log.warning(
            "event delivery failed",
            extra={
                "fields": {
                    "consumer": consumer.name,
                    "event": claimed.event.id,
                    "attempt": claimed.attempt,
                    "error": repr(exc),
                }
            },
        )
        self.failed(consumer.name, claimed, f"{type(exc).__name__}: {exc}")
