"""The HTTP request a change is made in, as outbox events record it (webhook payloads
carry its `request` object, the audit log its caller): set by the API's outermost
middleware for the length of a request, completed by authorization (who is calling, from
where), read by core when it emits an event (`core.events.request_origin`), and by
the metadata read cache as the span of one snapshot (`metadata.read_cache`). Never
consulted for a registry decision; changes made outside a request (the background
worker, the offline CLI) have none."""

from __future__ import annotations

import itertools
import os
import uuid
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class RequestInfo:
    id: str  # a GUID per request
    host: str  # the Host header: the registry's login server as the client named it
    method: str
    useragent: str
    caller_ip: str | None = None  # set by authorization: the resolved client address
    identity: str | None = None  # set by authorization: the principal's name
    # Set when the request's change wrote its outbox event: its audit row comes from
    # there (`audit.log`), not from the request path.
    evented: bool = False


class _RequestIds:
    """GUID-shaped request ids, unique per request: a random part drawn once per process
    (again in a forked worker) and a counter. A uuid4 per request costs a system call."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)

    def reseed(self) -> None:
        self._prefix = str(uuid.uuid4())[:24]  # random but for the last 48 bits
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter) & 0xFFFFFFFFFFFF:012x}"


new_request_id = _RequestIds().next

current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)
