"""`Microsoft.Resources`' two listings that let a client find where registries live
without being told: `GET /subscriptions` (Subscriptions - List, `az account list`) and
`GET /subscriptions/{sub}/resourcegroups` (Resource Groups - List, `az group list`).

Dockyard has no Azure: a subscription or resource group exists while a registry the
caller may read is placed in it, and the server's default placement (`[management]`,
where the default registry lives) always does, listed first, so a client that takes the
first of each lands where the server puts registries by default."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.management.arm import SUCCEEDED, caller, endpoint, json_response, services_of
from dockyard.auth.management import READ
from dockyard.core.registry_resources import Placement


async def _placements(request: Request) -> list[Placement]:
    """The default placement, then those of the registries the caller may read."""
    identity = await caller(request)
    services = services_of(request)
    resources, access = services.registry_resources, services.management_access
    placements = [resources.placement_of(services.registries.for_host(""))]
    for record in services.meta.registries():
        if identity is None or READ in access.actions(identity, record.id):
            placements.append(resources.placement_of(record))
    return placements


def _distinct(values: list[str]) -> list[str]:
    """In order, each once, compared case-insensitively as ARM compares these names."""
    seen: dict[str, str] = {}
    for value in values:
        seen.setdefault(value.lower(), value)
    return list(seen.values())


@endpoint
async def list_subscriptions(request: Request) -> Response:
    ids = _distinct([p.subscription_id for p in await _placements(request)])
    shapes: list[dict[str, Any]] = [
        {
            "id": f"/subscriptions/{sub}",
            "subscriptionId": sub,
            "displayName": sub,
            "state": "Enabled",
        }
        for sub in ids
    ]
    return json_response({"value": shapes})


@endpoint
async def list_resource_groups(request: Request) -> Response:
    subscription = request.path_params["subscription"]
    groups = _distinct(
        [
            p.resource_group
            for p in await _placements(request)
            if p.subscription_id.lower() == subscription.lower()
        ]
    )
    location = services_of(request).settings.management.location
    shapes = [
        {
            "id": f"/subscriptions/{subscription}/resourceGroups/{group}",
            "name": group,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "properties": {"provisioningState": SUCCEEDED},
        }
        for group in groups
    ]
    return json_response({"value": shapes})


routes = [
    Route("/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/subscriptions/{subscription}/resourcegroups", list_resource_groups, methods=["GET"]),
    Route("/subscriptions/{subscription}/resourceGroups", list_resource_groups, methods=["GET"]),
]
