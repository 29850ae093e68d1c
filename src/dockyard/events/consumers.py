"""The consumers the worker drains the outbox for. Features register theirs at import
(webhooks, replication, ...); none are built in yet."""

from __future__ import annotations

from collections.abc import Callable

from dockyard.events.outbox import Consumer
from dockyard.metadata.outbox import EventRecord

_CONSUMERS: dict[str, Consumer] = {}


def register(name: str, handle: Callable[[EventRecord], None]) -> Consumer:
    consumer = Consumer(name, handle)
    _CONSUMERS[name] = consumer
    return consumer


def registered() -> list[Consumer]:
    return list(_CONSUMERS.values())
