"""The management API as a `Feature`: its services (`Operations`, `RegistryResources`,
built on the lifecycle's and the tiers'), the custom cloud's and ARM's routes (the ARM
fallback last), ARM's error shape under `/subscriptions/` and `/providers/`, the cloud
discovery paths no network rule guards, and the verbs that manage registries, tokens,
scope maps and role assignments through it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import ErrorShape, Feature

if TYPE_CHECKING:
    import typer
    from starlette.routing import BaseRoute

    from dockyard.common.errors import RegistryError
    from dockyard.services import Services
    from dockyard.settings import Settings


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.management.operations import Operations
    from dockyard.management.registry_resources import Placement, RegistryResources

    settings = services.settings
    resources = RegistryResources(
        services.meta,
        services.registries,
        services.stores,
        services.administration,
        services.retention,
        services.soft_delete,
        Placement(settings.management.subscription_id, settings.management.resource_group),
        settings.management.location,
        settings.registry_domain,
        services.usages.change_sku,
        services.registry_keys,
        services.quarantine,
        services.scan_policies,
    )
    return {
        "operations": Operations(services.meta, services.clock),
        "registry_resources": resources,
    }


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.management import api
    from dockyard.management.api import cloud

    return [*cloud.routes, *api.routes]


def _statuses() -> Mapping[type[RegistryError], int]:
    from dockyard.management.registry_resources import ResourceNotFound

    return {ResourceNotFound: 404}


def _error_shapes() -> Mapping[str, ErrorShape]:
    from dockyard.management.api.errors import arm_shape

    return {"/subscriptions/": arm_shape, "/providers/": arm_shape}


def _public_paths(settings: Settings) -> frozenset[str]:
    from dockyard.management.api import cloud

    return cloud.public_paths(settings)


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import registries, roles, tokens

    registries.register(app)
    roles.register(app)
    tokens.register(app)


MANAGEMENT = Feature(
    "management",
    services=_services,
    routes=_routes,
    statuses=_statuses,
    error_shapes=_error_shapes,
    public_paths=_public_paths,
    cli=_cli,
)
