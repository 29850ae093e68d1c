"""`registries/tasks` as ARM sees them: create or replace (PUT, answered 200 whether it
created or replaced: the SDK az ships reads only a 200), show, list, update (PATCH),
delete, and `listDetails` (the task with its secret values, which nothing else shows).
The tasks are `dockyard.tasks.definitions`'; running one is `scheduleRun`'s
`TaskRunRequest` (`runs.py`)."""

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
    time_text,
)
from dockyard.management.api.paging import page_of, page_response
from dockyard.management.api.registries import REGISTRY
from dockyard.management.registry_resources import RegistryResource
from dockyard.tasks.definitions import Task

TASK_TYPE = "Microsoft.ContainerRegistry/registries/tasks"


def task_shape(resource: RegistryResource, task: Task) -> dict[str, Any]:
    return {
        "id": child_id(resource, "tasks", task.name),
        "name": task.name,
        "type": TASK_TYPE,
        "location": task.record.location,
        "tags": task.record.tags,
        "properties": {
            **task.properties,
            "creationDate": time_text(task.record.created_at),
            "provisioningState": SUCCEEDED,
        },
    }


class TaskBody(Body):
    """A task's PUT (Task) or PATCH (TaskUpdateParameters); the properties are checked
    by `dockyard.tasks.definitions`, which knows the step types."""

    location: str | None = None
    tags: dict[str, str] | None = None
    properties: dict[str, Any] | None = None


@endpoint
async def list_tasks(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    tasks = await asyncio.to_thread(services_of(request).tasks.list, resource.record)
    page, after = page_of(request, tasks, lambda task: task.name)
    return page_response(request, [task_shape(resource, task) for task in page], after)


@endpoint
async def get_task(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    task = await asyncio.to_thread(
        services_of(request).tasks.get, resource.record, request.path_params["task"]
    )
    return json_response(task_shape(resource, task))


@endpoint
async def put_task(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, TaskBody)
    task = await asyncio.to_thread(
        services_of(request).tasks.put,
        resource.record,
        request.path_params["task"],
        body.get("location") or resource.location,
        body.get("tags") or {},
        section(body, "properties"),
    )
    return json_response(task_shape(resource, task))


@endpoint
async def update_task(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, TaskBody)
    task = await asyncio.to_thread(
        services_of(request).tasks.update,
        resource.record,
        request.path_params["task"],
        body.get("tags"),
        section(body, "properties"),
    )
    return json_response(task_shape(resource, task))


@endpoint
async def delete_task(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    deleted = await asyncio.to_thread(
        services_of(request).tasks.delete, resource.record, request.path_params["task"]
    )
    return Response(status_code=200 if deleted else 204)


@endpoint
async def list_details(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    task = await asyncio.to_thread(
        services_of(request).tasks.get, resource.record, request.path_params["task"], True
    )
    return json_response(task_shape(resource, task))


TASK = REGISTRY + "/tasks/{task}"

routes = [
    Route(REGISTRY + "/tasks", list_tasks, methods=["GET"]),
    Route(TASK, get_task, methods=["GET"]),
    Route(TASK, put_task, methods=["PUT"]),
    Route(TASK, update_task, methods=["PATCH"]),
    Route(TASK, delete_task, methods=["DELETE"]),
    Route(TASK + "/listDetails", list_details, methods=["POST"]),
]
