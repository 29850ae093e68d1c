"""`registries/replications`: the replications of `dockyard.replication`, as ARM
resources. A create is long-running, as ACR's: 201 with `Azure-AsyncOperation`
(`.../replications/{name}/operationStatuses/{id}`), answered `InProgress` until the new
region has been contacted, then the client reads the replication; a delete is 202 with
`Location` (the registry's `operationResults`, as importImage's). An update (a PUT of
one that exists, or ACR's PATCH of `tags` and `regionEndpointEnabled`) completes at once."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.management import READ, WRITE
from dockyard.common.errors import ReplicationInvalid
from dockyard.core.registries import RegistryRecord, regional_host
from dockyard.management.api.arm import (
    SUCCEEDED,
    Body,
    InvalidRequestContent,
    child_id,
    endpoint,
    json_body,
    json_response,
    registry_for,
    section,
    services_of,
    time_text,
)
from dockyard.management.api.errors import operation_failure
from dockyard.management.api.imports import RETRY_AFTER_SECONDS
from dockyard.management.api.registries import REGISTRY
from dockyard.management.operations import FAILED, IN_PROGRESS, Failure
from dockyard.management.registry_resources import RegistryResource, ResourceNotFound
from dockyard.replication.replications import READY, Replication, Replications
from dockyard.services import Services

REPLICATION_TYPE = "Microsoft.ContainerRegistry/registries/replications"
CREATING = "Creating"


def _shape(
    resource: RegistryResource, replica: Replication, state: str = SUCCEEDED
) -> dict[str, Any]:
    return {
        "id": child_id(resource, "replications", replica.name),
        "name": replica.name,
        "type": REPLICATION_TYPE,
        "location": replica.location,
        "tags": replica.tags,
        "properties": {
            "provisioningState": state,
            "status": {
                "displayStatus": replica.status,
                "message": replica.message,
                "timestamp": time_text(replica.status_at),
                # Dockyard's extensions: what ACR does not show.
                "queueDepth": replica.lag.queue_depth,
                "lagSeconds": round(replica.lag.seconds, 3),
                "lastError": replica.last_error,
                "lastErrorTimestamp": time_text(replica.last_error_at),
            },
            "regionEndpointEnabled": replica.region_endpoint_enabled,
            "zoneRedundancy": replica.zone_redundancy,
            # Dockyard's extension: the host that reaches this replica only.
            "regionalEndpointHostName": regional_host(
                resource.record.name, resource.record.login_server, replica.location
            ),
        },
    }


class _ReplicationProperties(Body):
    regionEndpointEnabled: bool | None = None
    zoneRedundancy: Literal["Enabled", "Disabled"] | None = None


class ReplicationBody(Body):
    """A replication's PUT (Replication) or PATCH (ReplicationUpdateParameters)."""

    location: str | None = None
    tags: dict[str, str] | None = None
    properties: _ReplicationProperties | None = None


@endpoint
async def list_replications(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    replicas = services_of(request).replications.list(resource.record)
    return json_response({"value": [_shape(resource, replica) for replica in replicas]})


@endpoint
async def get_replication(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    replica = services_of(request).replications.get(
        resource.record, request.path_params["replication"]
    )
    return json_response(_shape(resource, replica))


async def _provision(services: Services, registry: RegistryRecord, name: str) -> None:
    """Contact the new replication's region, then send it the registry's content."""
    if (await services.replications.probe(registry, name)).status == READY:
        await asyncio.to_thread(services.replication_sender.sync, registry, name)


def _create_failure(exc: Exception) -> Failure:
    return operation_failure(exc, "replication's creation")


def _delete_failure(exc: Exception) -> Failure:
    return operation_failure(exc, "replication's deletion")


def _url(request: Request, path: str) -> str:
    version = request.query_params["api-version"]
    return str(request.url.replace(path=path, query=f"api-version={version}"))


@endpoint
async def put_replication(request: Request) -> Response:
    """PUT creates a replication, or updates one that exists; PATCH only updates."""
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, ReplicationBody)
    properties = section(body, "properties")
    services = services_of(request)
    replications, name = services.replications, request.path_params["replication"]
    if request.method == "PATCH" or replications.exists(resource.record, name):
        replica = await asyncio.to_thread(
            replications.update,
            resource.record,
            name,
            body.get("tags"),
            properties.get("regionEndpointEnabled"),
        )
        return json_response(_shape(resource, replica))
    if not body.get("location"):
        raise InvalidRequestContent("a new replication needs a location")
    replica = await asyncio.to_thread(
        replications.create,
        resource.record,
        name,
        body["location"],
        body.get("tags"),
        properties.get("regionEndpointEnabled", True),
        properties.get("zoneRedundancy") or "Disabled",
    )
    operation_id = services.operations.start(
        resource.record,
        "replication",
        _provision(services, resource.record, replica.name),
        _create_failure,
    )
    status_url = _url(request, f"{request.url.path}/operationStatuses/{operation_id}")
    return json_response(
        _shape(resource, replica, CREATING),
        status_code=201,
        headers={"Azure-AsyncOperation": status_url, "Retry-After": str(RETRY_AFTER_SECONDS)},
    )


@endpoint
async def operation_status(request: Request) -> Response:
    """ARM's operation status (what `Azure-AsyncOperation` names): always 200, the
    status in the body."""
    resource, _ = await registry_for(request, READ)
    operation_id = request.path_params["operation"]
    state = services_of(request).operations.state(resource.record, operation_id)
    if state is None:
        raise ResourceNotFound(f"no operation {operation_id}")
    answer: dict[str, Any] = {"id": request.url.path, "name": operation_id, "status": state.status}
    if state.status == FAILED and state.failure is not None:
        answer["error"] = {"code": state.failure.code, "message": state.failure.message}
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if state.status == IN_PROGRESS else None
    return json_response(answer, headers=headers)


async def _delete(replications: Replications, registry: RegistryRecord, name: str) -> None:
    await asyncio.to_thread(replications.delete, registry, name)


@endpoint
async def delete_replication(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    services = services_of(request)
    replications, name = services.replications, request.path_params["replication"]
    if not replications.exists(resource.record, name):
        return Response(status_code=204)
    if replications.get(resource.record, name).home:
        raise ReplicationInvalid("the home region's replication cannot be deleted")
    operation_id = services.operations.start(
        resource.record,
        "replication",
        _delete(replications, resource.record, name),
        _delete_failure,
    )
    registry_path = request.url.path.rsplit("/replications/", 1)[0]
    location = _url(request, f"{registry_path}/operationResults/{operation_id}")
    return Response(
        status_code=202, headers={"Location": location, "Retry-After": str(RETRY_AFTER_SECONDS)}
    )


REPLICATION = REGISTRY + "/replications/{replication}"

routes = [
    Route(REGISTRY + "/replications", list_replications, methods=["GET"]),
    Route(REPLICATION, get_replication, methods=["GET"]),
    Route(REPLICATION, put_replication, methods=["PUT", "PATCH"]),
    Route(REPLICATION, delete_replication, methods=["DELETE"]),
    Route(REPLICATION + "/operationStatuses/{operation}", operation_status, methods=["GET"]),
]
