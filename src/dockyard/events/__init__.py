"""The outbox and its consumers: every change others care about is written to the
`events` table in the transaction that makes it (`Transaction.emit`); consumers
(webhooks, replication, audit, ...) drain it here, handed the typed events of
`core.events` they declare, at least once, retried with backoff."""

from dockyard.events.outbox import Consumer, Outbox, backoff
from dockyard.metadata.outbox import ClaimedEvent, DeliveryRecord, EventRecord, Subscription

__all__ = [
    "ClaimedEvent",
    "Consumer",
    "DeliveryRecord",
    "EventRecord",
    "Outbox",
    "Subscription",
    "backoff",
]
