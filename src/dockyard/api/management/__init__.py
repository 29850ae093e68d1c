"""The management API, ARM-shaped (what `azure-mgmt-containerregistry` speaks), under
`/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/`: one
module per resource kind, `arm.py` for what they share. Any other path under
`/subscriptions/` gets ARM's 404, not the registry API's."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.management import (
    cache_rules,
    imports,
    logs,
    registries,
    role_assignments,
    subscriptions,
    tokens,
    webhooks,
)
from dockyard.api.management.arm import endpoint
from dockyard.core.registry_resources import ResourceNotFound


@endpoint
async def unknown(request: Request) -> Response:
    raise ResourceNotFound(f"no resource or action of this server at {request.url.path}")


routes = [
    *subscriptions.routes,
    *registries.routes,
    *imports.routes,
    *tokens.routes,
    *role_assignments.routes,
    *webhooks.routes,
    *cache_rules.routes,
    *logs.routes,
    Route("/subscriptions/{rest:path}", unknown, methods=["GET", "PUT", "PATCH", "POST", "DELETE"]),
]
