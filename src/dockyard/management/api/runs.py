"""ACR Tasks' quick runs as ARM sees them: `listBuildSourceUploadUrl` (where az uploads a
build context), `scheduleRun` (answered 200 with the Run, not as a long-running
operation: the SDK az ships reads only a 200; a `TaskRunRequest` runs a task of
`tasks.py`), and `registries/runs`: show, list (with
ACR's `$filter` and `$top`, no `nextLink`: az's pager follows it), cancel (200) and
`listLogSasUrl` (the log URL az polls). The runs are `dockyard.tasks`'."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.management import READ, WRITE
from dockyard.management.api.arm import (
    SUCCEEDED,
    InvalidRequestContent,
    child_id,
    child_name,
    endpoint,
    json_response,
    registry_for,
    services_of,
    time_text,
)
from dockyard.management.api.paging import whole_number
from dockyard.management.api.registries import REGISTRY
from dockyard.management.registry_resources import RegistryResource
from dockyard.tasks.runs import MAX_TOP, RunRecord, parse_filter

RUN_TYPE = "Microsoft.ContainerRegistry/registries/runs"


def run_shape(resource: RegistryResource, run: RunRecord) -> dict[str, Any]:
    request = run.request
    return {
        "id": child_id(resource, "runs", run.run_id),
        "name": run.run_id,
        "type": RUN_TYPE,
        "properties": {
            "runId": run.run_id,
            "status": run.status,
            "lastUpdatedTime": time_text(run.updated_at),
            "runType": run.run_type,
            "createTime": time_text(run.created_at),
            "startTime": time_text(run.started_at),
            "finishTime": time_text(run.finished_at),
            "outputImages": run.output_images,
            "task": run.task_name,
            "platform": {
                "os": request.get("platform", {}).get("os", "linux").capitalize(),
                "architecture": request.get("platform", {}).get("architecture", "amd64"),
                **(
                    {"variant": request["platform"]["variant"]}
                    if request.get("platform", {}).get("variant")
                    else {}
                ),
            },
            "agentConfiguration": {"cpu": 2},
            "timeout": run.timeout_seconds,
            "runErrorMessage": run.error_message,
            "isArchiveEnabled": False,
            "provisioningState": SUCCEEDED,
            **run.trigger,
        },
    }


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"


@endpoint
async def list_build_source_upload_url(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    services = services_of(request)
    registry_id = resource.record.id
    name = services.build_sources.new_name()
    return json_response(
        {
            "uploadUrl": services.task_urls.upload(_base(request), registry_id, name),
            "relativePath": services.build_sources.relative_path(registry_id, name),
        }
    )


@endpoint
async def schedule_run(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequestContent("the request content is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidRequestContent("the request content must be a JSON object")
    runs = services_of(request).runs
    if body.get("type") == "TaskRunRequest":
        name = child_name(resource, "tasks", body.get("taskId"), "taskId", "task")
        overrides = body.get("overrideTaskStepProperties") or {}
        run = await asyncio.to_thread(runs.schedule_task, resource.record, name, overrides)
    else:
        run = await asyncio.to_thread(runs.schedule, resource.record, body)
    return json_response(run_shape(resource, run))


@endpoint
async def list_runs(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    top = whole_number(request.query_params.get("$top", str(MAX_TOP)))
    if top is None or not 1 <= top <= MAX_TOP:
        raise InvalidRequestContent(f"$top must be 1 to {MAX_TOP}")
    selected = parse_filter(request.query_params.get("$filter"))
    found = services_of(request).runs.list(resource.record, selected, top)
    return json_response({"value": [run_shape(resource, run) for run in found]})


@endpoint
async def get_run(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    run = services_of(request).runs.get(resource.record, request.path_params["run"])
    return json_response(run_shape(resource, run))


@endpoint
async def update_run(request: Request) -> Response:
    """`isArchiveEnabled`: kept logs are not archived elsewhere yet; the run is shown."""
    resource, _ = await registry_for(request, WRITE)
    run = services_of(request).runs.get(resource.record, request.path_params["run"])
    return json_response(run_shape(resource, run))


@endpoint
async def cancel_run(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    await asyncio.to_thread(
        services_of(request).runs.cancel, resource.record, request.path_params["run"]
    )
    return Response(status_code=200)


@endpoint
async def list_log_sas_url(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    services = services_of(request)
    run = services.runs.get(resource.record, request.path_params["run"])
    link = services.task_urls.log(_base(request), resource.record.id, run.run_id)
    return json_response({"logLink": link, "logArtifactLink": ""})


RUN = REGISTRY + "/runs/{run}"

routes = [
    Route(REGISTRY + "/listBuildSourceUploadUrl", list_build_source_upload_url, methods=["POST"]),
    Route(REGISTRY + "/scheduleRun", schedule_run, methods=["POST"]),
    Route(REGISTRY + "/runs", list_runs, methods=["GET"]),
    Route(RUN, get_run, methods=["GET"]),
    Route(RUN, update_run, methods=["PATCH"]),
    Route(RUN + "/cancel", cancel_run, methods=["POST"]),
    Route(RUN + "/listLogSasUrl", list_log_sas_url, methods=["POST"]),
]
