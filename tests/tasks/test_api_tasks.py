"""Tasks as ARM resources, in process (nothing executes the queued runs here): created
with 200, shown without their secrets, with them through `listDetails`, listed, updated
field by field, deleted; run by a `TaskRunRequest` into runs that carry the task's name,
listed by `$filter=TaskName eq`; what cannot run yet refused with ARM's error."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from test_api_runs import REGISTRY, VERSION, session, uploaded

from dockyard.services import Services

TASKS = f"{REGISTRY}/tasks"
COMMAND_YAML = (
    "version: v1.1.0\nsteps: \n  - cmd: $Registry/hello/app:v1 echo hi\n"
    "    disableWorkingDirectoryOverride: true\n"
)


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )


def docker_task(**step: Any) -> dict[str, Any]:
    """What `az acr task create -f Dockerfile -c <git> --schedule ...` sends."""
    return {
        "location": "westus",
        "properties": {
            "step": {
                "type": "Docker",
                "imageNames": ["hello:{{.Run.ID}}"],
                "isPushEnabled": True,
                "noCache": False,
                "dockerFilePath": "Dockerfile",
                "arguments": [
                    {"type": "Argument", "name": "A", "value": "1", "isSecret": False},
                    {"type": "Argument", "name": "S", "value": "hush", "isSecret": True},
                ],
                "contextPath": "https://github.com/a/b.git",
                "contextAccessToken": "pat-secret",
                **step,
            },
            "status": "Enabled",
            "isSystemTask": False,
            "platform": {"os": "linux", "architecture": "amd64"},
            "agentConfiguration": {"cpu": 2},
            "timeout": 3600,
            "credentials": {
                "customRegistries": {
                    "other.example": {
                        "userName": {"value": "someone", "type": "Opaque"},
                        "password": {"value": "pw-secret", "type": "Opaque"},
                    }
                }
            },
            "trigger": {
                "timerTriggers": [{"name": "t1", "status": "Enabled", "schedule": "0 21 * * *"}],
                "baseImageTrigger": {
                    "name": "defaultBaseimageTriggerName",
                    "status": "Enabled",
                    "baseImageTriggerType": "Runtime",
                    "updateTriggerPayloadType": "Default",
                },
            },
        },
    }


def command_task() -> dict[str, Any]:
    """What `az acr task create --cmd '...' -c /dev/null` sends."""
    return {
        "location": "westus",
        "properties": {
            "step": {
                "type": "EncodedTask",
                "encodedTaskContent": base64.b64encode(COMMAND_YAML.encode()).decode(),
                "values": [],
            },
            "status": "Enabled",
            "platform": {"os": "linux", "architecture": "amd64"},
            "agentConfiguration": {"cpu": 2},
            "timeout": 3600,
            "credentials": {},
            "trigger": {},
        },
    }


def test_a_task_is_created_shown_listed_updated_and_deleted(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
        answers = {
            "created": await http.put(f"{TASKS}/build1", params=VERSION, json=docker_task()),
            "shown": await http.get(f"{TASKS}/build1", params=VERSION),
            "details": await http.post(f"{TASKS}/build1/listDetails", params=VERSION),
            "other": await http.put(f"{TASKS}/cmd-task", params=VERSION, json=command_task()),
            "listed": await http.get(TASKS, params=VERSION),
            "updated": await http.patch(
                f"{TASKS}/build1",
                params=VERSION,
                json={
                    "properties": {
                        "status": "Disabled",
                        "timeout": 900,
                        "step": {"type": "Docker", "imageNames": ["other:v1"]},
                    }
                },
            ),
            "details after": await http.post(f"{TASKS}/build1/listDetails", params=VERSION),
            "deleted": await http.delete(f"{TASKS}/build1", params=VERSION),
            "deleted again": await http.delete(f"{TASKS}/build1", params=VERSION),
            "gone": await http.get(f"{TASKS}/build1", params=VERSION),
        }
        return answers

    answers = session(services, steps)
    created = answers["created"]
    assert created.status_code == 200, created.text
    task = created.json()
    assert task["id"] == f"{TASKS}/build1" and task["name"] == "build1"
    assert task["type"] == "Microsoft.ContainerRegistry/registries/tasks"
    assert task["location"] == "westus"
    properties = task["properties"]
    assert properties["provisioningState"] == "Succeeded" and properties["creationDate"]
    assert properties["status"] == "Enabled" and properties["timeout"] == 3600
    assert properties["platform"] == {"os": "Linux", "architecture": "amd64"}
    assert properties["trigger"]["timerTriggers"][0]["schedule"] == "0 21 * * *"
    assert properties["trigger"]["baseImageTrigger"]["baseImageTriggerType"] == "Runtime"
    step = properties["step"]
    assert step["type"] == "Docker" and step["imageNames"] == ["hello:{{.Run.ID}}"]
    # No secret is shown but through listDetails.
    shown = answers["shown"].json()
    for body in (task, shown):
        assert "pat-secret" not in str(body) and "hush" not in str(body)
        assert "pw-secret" not in str(body) and "someone" not in str(body)
    assert shown["properties"]["step"]["arguments"][0]["value"] == "1"
    details = answers["details"].json()["properties"]
    assert details["step"]["contextAccessToken"] == "pat-secret"
    assert details["step"]["arguments"][1]["value"] == "hush"
    custom = details["credentials"]["customRegistries"]["other.example"]
    assert custom["password"]["value"] == "pw-secret"
    assert answers["other"].status_code == 200
    assert [t["name"] for t in answers["listed"].json()["value"]] == ["build1", "cmd-task"]
    updated = answers["updated"].json()["properties"]
    assert updated["status"] == "Disabled" and updated["timeout"] == 900
    assert updated["step"]["imageNames"] == ["other:v1"]
    assert updated["step"]["dockerFilePath"] == "Dockerfile"  # kept
    after = answers["details after"].json()["properties"]
    assert after["step"]["contextAccessToken"] == "pat-secret"  # secrets kept
    assert after["step"]["arguments"][1]["value"] == "hush"
    assert answers["deleted"].status_code == 200
    assert answers["deleted again"].status_code == 204
    gone = answers["gone"]
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ResourceNotFound"


def test_secrets_are_sealed_in_the_database(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> httpx.Response:
        return await http.put(f"{TASKS}/build1", params=VERSION, json=docker_task())

    assert session(services, steps).status_code == 200
    with services.meta.connection() as conn:
        stored = conn.exec_driver_sql("SELECT properties FROM tasks").scalar()
    assert "pat-secret" not in stored and "hush" not in stored and "pw-secret" not in stored


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("abc", {}),  # too short a name
        ("build1", {"step": {"type": "Nope", "dockerFilePath": "Dockerfile"}}),
        ("build1", {"step": {"type": "Docker"}}),  # no dockerFilePath
        ("build1", {"step": {"type": "EncodedTask"}}),  # no encodedTaskContent
        ("build1", {"step": {"type": "EncodedTask", "encodedTaskContent": "bm90IHlhbWw6IFs="}}),
        ("build1", {"step": {"type": "EncodedTask", "encodedTaskContent": "c3RlcHo6IDE="}}),
        ("build1", {"step": None}),
        ("build1", {"timeout": 10}),
        ("build1", {"timeout": "600"}),
        ("build1", {"status": "Maybe"}),
        ("build1", {"platform": {"os": "Plan9"}}),
        ("build1", {"trigger": {"timerTriggers": [{"name": "t"}]}}),
        ("build1", {"trigger": {"baseImageTrigger": {"name": "b", "baseImageTriggerType": "X"}}}),
    ],
)
def test_a_task_not_of_acr_shape_is_refused(
    services: Services, name: str, change: dict[str, Any]
) -> None:
    body = docker_task()
    body["properties"] |= change

    async def steps(http: httpx.AsyncClient) -> httpx.Response:
        return await http.put(f"{TASKS}/{name}", params=VERSION, json=body)

    refused = session(services, steps)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "InvalidParameter"


def task_run(name: str, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "TaskRunRequest",
        "taskId": f"{TASKS}/{name}",
        "overrideTaskStepProperties": {"arguments": [], "values": [], **overrides},
    }


def test_a_task_run_is_queued_with_the_task_name(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
        await http.put(f"{TASKS}/cmd-task", params=VERSION, json=command_task())
        await http.put(f"{TASKS}/build1", params=VERSION, json=docker_task())
        source = await uploaded(http)
        schedule = f"{REGISTRY}/scheduleRun"
        return {
            "command": await http.post(schedule, params=VERSION, json=task_run("cmd-task")),
            "build": await http.post(
                schedule,
                params=VERSION,
                json=task_run(
                    "build1", contextPath=source, arguments=[{"name": "A", "value": "2"}]
                ),
            ),
            "listed": await http.get(
                f"{REGISTRY}/runs",
                params=VERSION | {"$filter": "TaskName eq 'cmd-task'", "$top": "15"},
            ),
        }

    answers = session(services, steps)
    command = answers["command"]
    assert command.status_code == 200, command.text
    properties = command.json()["properties"]
    assert properties["task"] == "cmd-task" and properties["runType"] == "AutoRun"
    assert properties["timeout"] == 3600 and properties["status"] == "Queued"
    build = answers["build"]
    assert build.status_code == 200, build.text
    assert build.json()["properties"]["runType"] == "AutoBuild"
    run = services.runs.get_by_id(services.registries.all()[0].id, "ca2")
    assert run.task_name == "build1" and run.request["imageNames"] == ["hello:{{.Run.ID}}"]
    arguments = {a["name"]: a for a in run.request["arguments"]}
    assert arguments["A"]["value"] == "2"  # overridden
    assert arguments["S"]["secret"] and arguments["S"]["value"] != "hush"  # sealed again
    assert [r["name"] for r in answers["listed"].json()["value"]] == ["ca1"]


@pytest.mark.parametrize(
    ("task", "run", "status", "code"),
    [
        # A tarball URL is stored but not run yet; a git repository on the server's disk
        # is a context only where [tasks] local_git_contexts allows it.
        (
            "build1",
            task_run("build1", contextPath="https://example.com/app.tar.gz"),
            400,
            "NotSupported",
        ),
        ("build1", task_run("build1", contextPath="/srv/app.git"), 400, "NotSupported"),
        ("build1", task_run("nope1"), 404, "ResourceNotFound"),
        ("build1", task_run("build1") | {"taskId": "/elsewhere/tasks/build1"}, 400, None),
        ("disabled", task_run("disabled"), 409, "TaskDisabled"),
    ],
)
def test_a_task_run_that_cannot_run_is_refused(
    services: Services, task: str, run: dict[str, Any], status: int, code: str | None
) -> None:
    body = docker_task()
    if task == "disabled":
        body = command_task()
        body["properties"]["status"] = "Disabled"

    async def steps(http: httpx.AsyncClient) -> httpx.Response:
        await http.put(f"{TASKS}/{task}", params=VERSION, json=body)
        return await http.post(f"{REGISTRY}/scheduleRun", params=VERSION, json=run)

    refused = session(services, steps)
    assert refused.status_code == status, refused.text
    if code is not None:
        assert refused.json()["error"]["code"] == code
