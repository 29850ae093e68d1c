"""Webhooks as a `Feature`: their delivery runs with the background work, an unknown
webhook is a 404, and `dockyard webhook` is theirs. The management API serves their
resources (`management/api/webhooks.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer

    from dockyard.common.errors import RegistryError
    from dockyard.services import Services


def _statuses() -> Mapping[type[RegistryError], int]:
    from dockyard.webhooks.model import WebhookUnknown

    return {WebhookUnknown: 404}


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.webhooks.delivery import Dispatcher

    dispatcher = Dispatcher(
        services.webhooks.sender, services.outbox, services.settings.outbox.poll_seconds
    )
    return [dispatcher.run()]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import webhooks

    webhooks.register(app)


WEBHOOKS = Feature("webhooks", statuses=_statuses, jobs=_jobs, cli=_cli)
