"""`registries/taskRuns` as ARM sees them (a preview resource: templates create them,
`az acr taskrun list|show|logs|delete` read them): create or replace (PUT), show, list,
update (PATCH: a new `runRequest` or `forceUpdateTag` runs it again), delete, and
`listDetails`. Answered 200 at once, their runs queued, as `scheduleRun` is; the runs
are `registries/runs` (`runs.py`), the task runs `dockyard.tasks.task_runs`'."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.management import READ, WRITE
from dockyard.management.api.arm import (
    SUCCEEDED,
    Body,
    child_id,
    endpoint,
    json_body,
    json_response,
    registry_for,
    section,
    services_of,
)
from dockyard.management.api.paging import page_of, page_response
from dockyard.management.api.registries import REGISTRY
from dockyard.management.api.runs import run_shape
from dockyard.management.registry_resources import RegistryResource
from dockyard.tasks.task_runs import TaskRunView

TASK_RUN_TYPE = "Microsoft.ContainerRegistry/registries/taskRuns"


def task_run_shape(resource: RegistryResource, view: TaskRunView) -> dict[str, Any]:
    record = view.record
    shape: dict[str, Any] = {
        "id": child_id(resource, "taskRuns", record.name),
        "name": record.name,
        "type": TASK_RUN_TYPE,
        "location": record.location,
    }
    if record.identity is not None:
        shape["identity"] = record.identity
    properties: dict[str, Any] = {
        "provisioningState": SUCCEEDED,
        "runRequest": record.run_request,
        "runResult": run_shape(resource, view.run),
    }
    if record.force_update_tag is not None:
        properties["forceUpdateTag"] = record.force_update_tag
    return shape | {"properties": properties}


class TaskRunBody(Body):
    """A task run's PUT (TaskRun) or PATCH (TaskRunUpdateParameters); the run request
    is checked by `dockyard.tasks.requests`, which knows its types."""

    location: str | None = None
    identity: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


@endpoint
async def list_task_runs(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    found = await asyncio.to_thread(services_of(request).task_runs.list, resource.record)
    page, after = page_of(request, found, lambda view: view.record.name)
    return page_response(request, [task_run_shape(resource, view) for view in page], after)


@endpoint
async def get_task_run(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    view = await asyncio.to_thread(
        services_of(request).task_runs.get, resource.record, request.path_params["task_run"]
    )
    return json_response(task_run_shape(resource, view))


@endpoint
async def put_task_run(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, TaskRunBody)
    view = await asyncio.to_thread(
        services_of(request).task_runs.put,
        resource.record,
        request.path_params["task_run"],
        body.get("location") or resource.location,
        body.get("identity"),
        section(body, "properties"),
    )
    return json_response(task_run_shape(resource, view))


@endpoint
async def update_task_run(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, TaskRunBody)
    view = await asyncio.to_thread(
        services_of(request).task_runs.update,
        resource.record,
        request.path_params["task_run"],
        body.get("identity"),
        section(body, "properties"),
    )
    return json_response(task_run_shape(resource, view))


@endpoint
async def delete_task_run(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    deleted = await asyncio.to_thread(
        services_of(request).task_runs.delete, resource.record, request.path_params["task_run"]
    )
    return Response(status_code=200 if deleted else 204)


@endpoint
async def list_details(request: Request) -> Response:
    """ACR's listDetails adds the request's secrets; Dockyard never shows them again
    once stored (the run keeps them sealed), so it answers as GET does."""
    return await get_task_run(request)


TASK_RUN = REGISTRY + "/taskRuns/{task_run}"

routes = [
    Route(REGISTRY + "/taskRuns", list_task_runs, methods=["GET"]),
    Route(TASK_RUN, get_task_run, methods=["GET"]),
    Route(TASK_RUN, put_task_run, methods=["PUT"]),
    Route(TASK_RUN, update_task_run, methods=["PATCH"]),
    Route(TASK_RUN, delete_task_run, methods=["DELETE"]),
    Route(TASK_RUN + "/listDetails", list_details, methods=["POST"]),
]
