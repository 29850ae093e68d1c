"""Geo-replication as a `Feature`: its service, `Replications` (a registry's replications
in the peer regions `[region]` names), and the endpoints peers call. The management API
shows and changes replications as ARM's `registries/replications`
(`management/api/replications.py`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from dockyard.common.errors import RegistryError
    from dockyard.services import Services
    from dockyard.settings import Settings


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.replication.regions import Regions
    from dockyard.replication.replications import Replications

    return {"replications": Replications(services.meta, Regions.from_settings(services.settings))}


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.replication import api

    return api.routes


def _statuses() -> Mapping[type[RegistryError], int]:
    from dockyard.common.errors import ReplicationUnknown

    return {ReplicationUnknown: 404}


REPLICATION = Feature("replication", services=_services, routes=_routes, statuses=_statuses)
