"""Webhooks as a `Feature`: `Webhooks` (with its `Sender`), their delivery with the
background work, the gauge of their failing deliveries on `/metrics`, an unknown webhook
is a 404, and `dockyard webhook` is theirs. The
management API serves their resources (`management/api/webhooks.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer
    from prometheus_client.registry import Collector

    from dockyard.common.errors import RegistryError
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.metadata.webhooks import WebhookStore
    from dockyard.webhooks.delivery import Sender
    from dockyard.webhooks.model import Webhooks

    meta, box, clock = services.meta, services.box, services.clock
    sender = Sender(WebhookStore(meta), box, clock, services.settings.webhooks.timeout_seconds)
    return {"webhooks": Webhooks(meta, box, services.outbox, sender, clock)}


def _statuses() -> Mapping[type[RegistryError], int]:
    from dockyard.webhooks.model import WebhookUnknown

    return {WebhookUnknown: 404}


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.webhooks.delivery import Dispatcher

    dispatcher = Dispatcher(services.webhooks.sender, services.outbox, services.image_regions)
    return [dispatcher.run()]


def _collectors(services: Services) -> Sequence[Collector]:
    from dockyard.webhooks.metrics import WebhookGauges

    return [WebhookGauges(services.monitoring)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import webhooks

    webhooks.register(app)


WEBHOOKS = Feature(
    "webhooks",
    services=_services,
    statuses=_statuses,
    collectors=_collectors,
    jobs=_jobs,
    cli=_cli,
)
