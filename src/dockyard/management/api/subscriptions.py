"""`Microsoft.Resources`' listings that let a client find where registries live without
being told: `GET /subscriptions` (Subscriptions - List, `az account list`, and what
`az login` reads), `GET /subscriptions/{sub}/resourcegroups` (Resource Groups - List,
`az group list`), `GET /subscriptions/{sub}/resourcegroups/{rg}` (Resource Groups - Get,
what `az acr create` reads the location from), `GET /subscriptions/{sub}/resources`
(Resources - List, how
`az acr ... -n NAME` finds a registry's resource group: `$filter=resourceType eq
'Microsoft.ContainerRegistry/registries'`, the one filter served).

Dockyard has no Azure: a subscription or resource group exists while a registry the
caller may read is placed in it, and the server's default placement (`[management]`,
where the default registry lives) always does, listed first, so a client that takes the
first of each lands where the server puts registries by default."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.management import READ
from dockyard.common.errors import RequestInvalid
from dockyard.management.api.arm import SUCCEEDED, caller, endpoint, json_response, services_of
from dockyard.management.api.paging import page_of, page_response
from dockyard.management.api.registries import (
    RESOURCE_TYPE,
    readable_registries,
    registry_shape_for,
)
from dockyard.management.registry_resources import Placement

_TYPE_FILTER = re.compile(r"\s*resourceType\s+eq\s+'([^']*)'\s*", re.IGNORECASE)


class FilterUnsupported(RequestInvalid):
    code = "InvalidFilterInQueryString"


async def _placements(request: Request) -> list[Placement]:
    """The default placement, then those of the registries the caller may read."""
    identity = await caller(request)
    services = services_of(request)
    resources, access = services.registry_resources, services.management_access
    placements = [resources.placement_of(services.registries.for_host(""))]
    for record in services.registries.all():
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
    tenant = services_of(request).settings.management.tenant_id
    shapes: list[dict[str, Any]] = [
        {
            "id": f"/subscriptions/{sub}",
            "subscriptionId": sub,
            "displayName": sub,
            "state": "Enabled",
            "tenantId": tenant,
            "managedByTenants": [],
        }
        for sub in ids
    ]
    return json_response({"value": shapes})


async def _groups(request: Request) -> list[str]:
    """The resource groups of the path's subscription that the caller sees."""
    subscription = request.path_params["subscription"]
    return _distinct(
        [
            p.resource_group
            for p in await _placements(request)
            if p.subscription_id.lower() == subscription.lower()
        ]
    )


def _group_shape(request: Request, group: str) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{request.path_params['subscription']}/resourceGroups/{group}",
        "name": group,
        "type": "Microsoft.Resources/resourceGroups",
        "location": services_of(request).settings.management.location,
        "properties": {"provisioningState": SUCCEEDED},
    }


@endpoint
async def list_resource_groups(request: Request) -> Response:
    return json_response({"value": [_group_shape(request, g) for g in await _groups(request)]})


@endpoint
async def get_resource_group(request: Request) -> Response:
    """Any resource group: a registry may be created in any (placement is bookkeeping),
    so each exists as far as a client can tell, spelled as a registry placed it if one
    is, as the path does otherwise."""
    wanted = request.path_params["resource_group"]
    known = {group.lower(): group for group in await _groups(request)}
    return json_response(_group_shape(request, known.get(wanted.lower(), wanted)))


@endpoint
async def list_resources(request: Request) -> Response:
    """The subscription's resources the caller may read: registries, the only kind
    Dockyard has; `$filter` may ask for one resource type."""
    wanted = request.query_params.get("$filter")
    if wanted is not None:
        match = _TYPE_FILTER.fullmatch(wanted)
        if match is None:
            raise FilterUnsupported(
                f"$filter {wanted!r} is not supported; use resourceType eq '{RESOURCE_TYPE}'"
            )
        if match.group(1).lower() != RESOURCE_TYPE.lower():
            return json_response({"value": []})
    page, after = page_of(request, await readable_registries(request), lambda r: r.record.name)
    keys = ("id", "name", "type", "location", "tags", "sku")
    return page_response(
        request,
        [{k: s[k] for k in keys} for s in (registry_shape_for(request, r) for r in page)],
        after,
    )


routes = [
    Route("/subscriptions", list_subscriptions, methods=["GET"]),
    Route("/subscriptions/{subscription}/resourcegroups", list_resource_groups, methods=["GET"]),
    Route("/subscriptions/{subscription}/resourceGroups", list_resource_groups, methods=["GET"]),
    Route("/subscriptions/{subscription}/resources", list_resources, methods=["GET"]),
    *(
        Route(
            f"/subscriptions/{{subscription}}/{groups}/{{resource_group}}",
            get_resource_group,
            methods=["GET"],
        )
        for groups in ("resourcegroups", "resourceGroups")
    ),
]
