"""The image lifecycle as a `Feature`: its services (`Retention`, `SoftDelete`, `Purge`,
`PurgeSchedules`), the recycle bin's routes under `/acr/v1/_deleted/` (`acr.py`), its
background job (retention, recycle bin
expiry, due purge schedules) and its verbs, `dockyard config retention|soft-delete`
(through the management API) and `dockyard purge`, `purge-schedule` (offline)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer
    from starlette.routing import BaseRoute

    from dockyard.services import Services
    from dockyard.settings import Settings


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.lifecycle.purge import Purge, PurgeSchedules
    from dockyard.lifecycle.retention import Retention
    from dockyard.lifecycle.soft_delete import SoftDelete

    meta, manifests, clock = services.meta, services.manifests, services.clock
    purge = Purge(meta, manifests, clock)
    return {
        "retention": Retention(meta, manifests, clock),
        "soft_delete": SoftDelete(meta, clock),
        "purge": purge,
        "purge_schedules": PurgeSchedules(meta, purge, clock),
    }


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.lifecycle import acr

    return acr.routes


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.lifecycle.jobs import apply_lifecycle

    return [apply_lifecycle(services)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import policies, purge

    policies.register(app)
    purge.register(app)


LIFECYCLE = Feature("lifecycle", services=_services, routes=_routes, jobs=_jobs, cli=_cli)
