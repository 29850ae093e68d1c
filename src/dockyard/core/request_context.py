"""The HTTP request a change is made in, as outbox events record it (webhook payloads
carry its `request` object): set by the API's outermost middleware for the length of a
request, read by core when it emits an event. Never consulted for a decision; changes
made outside a request (the background worker, the offline CLI) have none."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RequestInfo:
    id: str  # a GUID per request
    host: str  # the Host header: the registry's login server as the client named it
    method: str
    useragent: str


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


def request_fields() -> dict[str, dict[str, str]]:
    """`{"request": {...}}` for an event's payload, or nothing outside a request."""
    info = current_request.get()
    return {} if info is None else {"request": asdict(info)}
