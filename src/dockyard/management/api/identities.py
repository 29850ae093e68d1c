"""`Microsoft.ManagedIdentity`'s user-assigned identities, read-only: what `az acr create
--identity NAME --key-encryption-key KEY` reads (the identity's client id) before it
creates a registry whose encryption is on. Dockyard has no managed identities; its own
identities (`dockyard identity create`) stand for them: the one named NAME (or whose id
is NAME), in any resource group of any subscription, whose client id is the id it logs
in with. Reading one takes `read` on the server, as listing identities does."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.management import READ
from dockyard.management.api.arm import caller, endpoint, json_response, require, services_of
from dockyard.management.registry_resources import ResourceNotFound

RESOURCE_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"


@endpoint
async def get_identity(request: Request) -> Response:
    require(request, await caller(request), None, READ)
    services = services_of(request)
    name = request.path_params["name"]
    found = services.administration.identity(name)
    if found is None:
        raise ResourceNotFound(f"the user-assigned identity {name!r} was not found")
    params = request.path_params
    path = (
        f"/subscriptions/{params['subscription']}/resourceGroups/{params['group']}"
        f"/providers/{RESOURCE_TYPE}/{found.name}"
    )
    return json_response(
        {
            "id": path,
            "name": found.name,
            "type": RESOURCE_TYPE,
            "location": services.settings.management.location,
            "tags": {},
            "properties": {
                "clientId": found.id,
                "principalId": found.id,
                "tenantId": services.settings.management.tenant_id,
            },
        }
    )


routes = [
    Route(
        "/subscriptions/{subscription}/resourceGroups/{group}/providers/"
        "Microsoft.ManagedIdentity/userAssignedIdentities/{name}",
        get_identity,
        methods=["GET"],
    )
]
