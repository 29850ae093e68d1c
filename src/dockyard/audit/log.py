"""The audit log: ACR's diagnostics tables ContainerRegistryRepositoryEvents and
ContainerRegistryLoginEvents, kept `[audit] retention_days` and queried by time,
identity, repository, operation and result.

Where rows come from, and what a crash can lose:

- Pushes, untags and deletes that changed something: from the outbox, by the `audit`
  consumer (`record_event`, taking `AUDITED_EVENTS`). The event commits with the
  change, so the row is as durable as the change itself, whoever made it (a request,
  retention, a purge, the CLI).
- Pulls (`/v2` manifest GETs), refused or failed writes, and writes that changed
  nothing: from the request path, which reads nothing from the database for them.
  `buffer` keeps them in process memory (at most `[audit] buffer_rows`; beyond that a
  row is dropped and counted) until the server writes them in one batch every
  `[audit] flush_seconds`. A process killed meanwhile loses at most that much: pulls are
  best-effort, so that the manifest GET stays one read.
- Logins: `login_events`, written at each login attempt by `auth.login_guard`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from dockyard.common.clock import Clock
from dockyard.core.events import (
    Envelope,
    Event,
    ManifestDeleted,
    ManifestPushed,
    RepositoryDeleted,
    TagMoved,
    Untagged,
)
from dockyard.core.registries import Registries
from dockyard.metadata.audit import AuditFilter, AuditStore, RepositoryEventRecord
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

AUDIT_CONSUMER = "audit"
# The outbox events that become repository events (lock and quarantine changes do not:
# ACR's table has no such operations).
AUDITED_EVENTS: tuple[type[Event], ...] = (
    ManifestPushed,
    Untagged,
    ManifestDeleted,
    RepositoryDeleted,
)

LogKind = Literal["repository", "login"]

# What the API answers a successful operation with: an outbox row's ResultType.
_PUSHED = ("Push", "201", "Created")
_UNTAGGED = ("Untag", "202", "Accepted")
_DELETED = ("Delete", "202", "Accepted")
_DURATION = re.compile(r"(?:\d+[smhdw])+")
_DURATION_PART = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class AuditLog:
    def __init__(
        self,
        meta: Metadata,
        registries: Registries,
        clock: Clock,
        retention_days: int,
        buffer_rows: int,
        pulls: bool = True,
    ) -> None:
        self._store = AuditStore(meta)
        self.pulls = pulls  # `[audit] pulls`: whether the request path records pulls
        self._registries = registries
        self._clock = clock
        self.retention = timedelta(days=retention_days)
        # Plain tuples: the collector stops tracking a tuple of plain values (not a
        # named tuple), so a second's worth of pulls adds nothing to its collections.
        self._pending: deque[tuple] = deque()
        self._capacity = buffer_rows

    def buffer(self, row: RepositoryEventRecord) -> bool:
        """Keep a request path row for the next `flush` (its `login_server`, the Host the
        client named, picks its registry then); False (the row is dropped) when the
        buffer is full, as when the database has been unreachable for a while."""
        if len(self._pending) >= self._capacity:
            return False
        self._pending.append(tuple(row))
        return True

    def flush(self) -> int:
        """Write the buffered rows in one transaction; how many. If the write fails the
        rows are put back (up to the buffer's size) and the error raised."""
        # Runs in a thread while requests append: take exactly what is there now.
        taken = [
            RepositoryEventRecord._make(self._pending.popleft()) for _ in range(len(self._pending))
        ]
        # One look-up per login server, not per row: off a request, each look-up would
        # check the read cache against the database again.
        registry_ids: dict[str, int] = {}
        for row in taken:
            host = row.login_server or ""
            if host not in registry_ids:
                registry_ids[host] = self._registries.for_host(host).id
        try:
            self._store.add([(registry_ids[row.login_server or ""], row) for row in taken])
        except Exception:
            room = self._capacity - len(self._pending)
            self._pending.extendleft(tuple(row) for row in reversed(taken[:room]))
            raise
        return len(taken)

    def record_event(self, stored: Envelope) -> None:
        """The `audit` outbox consumer: a push, untag or delete event as a repository
        event. Idempotent: a redelivered event's row exists already and is skipped."""
        self.record_events([stored])

    def record_events(self, batch: Sequence[Envelope]) -> None:
        """`record_event` for a batch, in one transaction."""
        rows = [(stored.event.registry_id, row) for stored in batch if (row := event_row(stored))]
        self._store.add(rows)

    def prune(self) -> int:
        """Delete repository and login events older than the retention period."""
        return self._store.prune(self._clock() - self.retention)

    def query(
        self, registry: RegistryRecord, kind: LogKind, wanted: AuditFilter, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Matching rows, newest first, with ACR's column names (a Dockyard extension:
        a login's `Method`)."""
        if kind == "login":
            return [
                {
                    "TimeGenerated": _timestamp(row.time),
                    "Category": "ContainerRegistryLoginEvents",
                    "LoginServer": registry.login_server,
                    "OperationName": "Login",
                    "Method": row.method,
                    "Identity": row.identity,
                    "ResultType": row.result,
                    "ResultDescription": row.description,
                    "CallerIpAddress": row.caller_ip,
                    "UserAgent": row.user_agent,
                    "CorrelationId": row.correlation_id,
                }
                for row in self._store.login_events(registry.id, wanted, limit)
            ]
        return [
            {
                "TimeGenerated": _timestamp(row.time),
                "Category": "ContainerRegistryRepositoryEvents",
                "LoginServer": row.login_server or registry.login_server,
                "OperationName": row.operation,
                "Repository": row.repository,
                "Tag": row.tag,
                "Digest": row.digest,
                "MediaType": row.media_type,
                "ArtifactType": row.artifact_type,
                "Size": row.size,
                "Identity": row.identity,
                "ResultType": row.result_type,
                "ResultDescription": row.result_description,
                "CallerIpAddress": row.caller_ip,
                "UserAgent": row.user_agent,
                "CorrelationId": row.correlation_id,
                "DurationMs": row.duration_ms,
            }
            for row in self._store.repository_events(registry.id, wanted, limit)
        ]


def event_row(stored: Envelope) -> RepositoryEventRecord | None:
    """The repository event an outbox event gives, or None for an event ACR does not
    log. Who and from where come from the request the change was made in; changes made
    outside one (the worker's retention and purges, the offline CLI) have neither."""
    event = stored.event
    tag = digest = media_type = artifact_type = None
    size: int | None = None
    match event:
        case ManifestPushed():
            operation, status, description = _PUSHED
            tag = event.tag if isinstance(event, TagMoved) else None
            digest, size = event.digest, event.size
            media_type, artifact_type = event.media_type, event.config_media_type
        case Untagged():
            operation, status, description = _UNTAGGED
            tag, digest = event.tag, event.digest
        case ManifestDeleted():
            operation, status, description = _DELETED
            digest = event.digest
            media_type, artifact_type = event.media_type, event.config_media_type
        case RepositoryDeleted():
            operation, status, description = _DELETED
        case _:
            return None
    origin = event.origin
    return RepositoryEventRecord(
        time=stored.created_at,
        operation=operation,
        repository=event.repository,
        result_type=status,
        result_description=description,
        tag=tag,
        digest=digest,
        identity=origin.identity if origin else None,
        caller_ip=origin.ip if origin else None,
        user_agent=(origin.useragent or None) if origin else None,
        login_server=(origin.host or None) if origin else None,
        correlation_id=origin.id if origin else None,
        size=size,
        media_type=media_type,
        artifact_type=artifact_type,
        event_id=stored.id,
    )


def moment(value: str, now: datetime) -> datetime:
    """A query's bound as people write it: `2h`, `3d12h`, `30m` (that long before `now`)
    or an ISO 8601 time (UTC unless it says), in UTC. ValueError for anything else,
    times before year 1 or after 9999 included (`99999999d` ago)."""
    try:
        if _DURATION.fullmatch(value):
            ago = timedelta()
            for number, unit in _DURATION_PART.findall(value):
                ago += timedelta(**{_UNITS[unit]: int(number)})
            return now - ago
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{value!r}: give 2h, 3d12h or an ISO 8601 time, between years 1 and 9999"
        ) from None


def _timestamp(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
