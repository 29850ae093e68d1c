"""The audit log as a `Feature`: `AuditLog`, its outbox consumer (events become repository event
rows), the request path's rows (`requests.RequestRows`, a `RequestRecorder`: every
server process buffers its own, and the server flushes them), its pruning job, and
`dockyard logs query`."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature, RequestRecorder

if TYPE_CHECKING:
    import typer
    from prometheus_client import CollectorRegistry

    from dockyard.events import Consumer
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.audit.log import AuditLog

    settings = services.settings.audit
    log = AuditLog(
        services.meta,
        services.registries,
        services.clock,
        settings.retention_days,
        settings.buffer_rows,
        settings.pulls,
    )
    return {"audit": log}


def _consumers(services: Services) -> Sequence[Consumer]:
    from dockyard.audit.log import AUDIT_CONSUMER, AUDITED_EVENTS
    from dockyard.events import Consumer

    return [
        Consumer(
            AUDIT_CONSUMER,
            services.audit.record_event,
            AUDITED_EVENTS,
            handle_batch=services.audit.record_events,
        )
    ]


def _recorders(services: Services, metrics: CollectorRegistry | None) -> Sequence[RequestRecorder]:
    from dockyard.audit.requests import RequestRows

    return [RequestRows(services.audit, metrics)]


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.audit.jobs import prune_audit_log

    return [prune_audit_log(services)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import logs

    logs.register(app)


AUDIT = Feature(
    "audit",
    services=_services,
    recorders=_recorders,
    consumers=_consumers,
    jobs=_jobs,
    cli=_cli,
)
