"""The image lifecycle as a `Feature`: its background job (retention, recycle bin
expiry, due purge schedules) and its verbs, `dockyard config retention|soft-delete`
(through the management API) and `dockyard purge`, `purge-schedule` (offline)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer

    from dockyard.services import Services


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.lifecycle.jobs import apply_lifecycle

    return [apply_lifecycle(services)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import policies, purge

    policies.register(app)
    purge.register(app)


LIFECYCLE = Feature("lifecycle", jobs=_jobs, cli=_cli)
