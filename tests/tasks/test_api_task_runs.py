"""`registries/taskRuns` in process (nothing executes the queued runs here): a task run
created runs its request once, an identical PUT changes nothing, a new `forceUpdateTag`
(PUT or PATCH) or a new request runs it again, secrets never shown, listed, deleted
(its runs stay), and bad bodies refused in ARM's shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_api_runs import REGISTRY, VERSION, build_body, session, uploaded

from dockyard.services import Services
from dockyard.tasks.task_runs import shown

TASK_RUNS = f"{REGISTRY}/taskRuns"


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )


SECRET = {"type": "Argument", "name": "TOKEN", "value": "s3cr3t", "isSecret": True}


def task_run(source: str, tag: str | None = None) -> dict[str, Any]:
    properties: dict[str, Any] = {"runRequest": build_body(source, arguments=[SECRET])}
    if tag is not None:
        properties["forceUpdateTag"] = tag
    return {"location": "westus", "properties": properties}


def test_a_task_run_runs_when_created_and_when_forced(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> dict[str, httpx.Response]:
        source = await uploaded(http)
        answers = {
            "created": await http.put(
                f"{TASK_RUNS}/nightly", params=VERSION, json=task_run(source, "1")
            ),
            "same": await http.put(
                f"{TASK_RUNS}/nightly", params=VERSION, json=task_run(source, "1")
            ),
            "forced": await http.patch(
                f"{TASK_RUNS}/nightly", params=VERSION, json={"properties": {"forceUpdateTag": "2"}}
            ),
            "put again": await http.put(
                f"{TASK_RUNS}/nightly", params=VERSION, json=task_run(source, "3")
            ),
        }
        answers["shown"] = await http.get(f"{TASK_RUNS}/nightly", params=VERSION)
        answers["details"] = await http.post(f"{TASK_RUNS}/nightly/listDetails", params=VERSION)
        answers["listed"] = await http.get(TASK_RUNS, params=VERSION)
        answers["deleted"] = await http.delete(f"{TASK_RUNS}/nightly", params=VERSION)
        answers["gone"] = await http.get(f"{TASK_RUNS}/nightly", params=VERSION)
        answers["deleted again"] = await http.delete(f"{TASK_RUNS}/nightly", params=VERSION)
        answers["runs"] = await http.get(f"{REGISTRY}/runs", params=VERSION)
        return answers

    answers = session(services, steps)
    created = answers["created"].json()
    assert answers["created"].status_code == 200, answers["created"].text
    assert created["id"] == f"{TASK_RUNS}/nightly" and created["location"] == "westus"
    assert created["type"] == "Microsoft.ContainerRegistry/registries/taskRuns"
    properties = created["properties"]
    assert properties["provisioningState"] == "Succeeded" and properties["forceUpdateTag"] == "1"
    assert properties["runResult"]["name"] == "ca1"
    assert properties["runResult"]["properties"]["status"] == "Queued"
    assert properties["runRequest"]["arguments"] == [
        {"type": "Argument", "name": "TOKEN", "isSecret": True}
    ]
    assert answers["same"].json()["properties"]["runResult"]["name"] == "ca1"
    assert answers["forced"].json()["properties"]["runResult"]["name"] == "ca2"
    assert answers["forced"].json()["properties"]["forceUpdateTag"] == "2"
    assert answers["put again"].json()["properties"]["runResult"]["name"] == "ca3"
    for name in ("shown", "details"):
        assert answers[name].json() == answers["put again"].json()
    assert "s3cr3t" not in answers["details"].text
    assert [t["name"] for t in answers["listed"].json()["value"]] == ["nightly"]
    assert answers["deleted"].status_code == 200 and answers["deleted again"].status_code == 204
    assert answers["gone"].status_code == 404
    assert answers["gone"].json()["error"]["code"] == "ResourceNotFound"
    assert [r["name"] for r in answers["runs"].json()["value"]] == ["ca3", "ca2", "ca1"]


def test_bad_task_runs_are_refused_and_nothing_is_stored(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> list[httpx.Response]:
        source = await uploaded(http)
        bad_request = task_run(source) | {"properties": {"runRequest": {"type": "Nope"}}}
        return [
            await http.put(f"{TASK_RUNS}/a", params=VERSION, json={"properties": {}}),
            await http.put(f"{TASK_RUNS}/b", params=VERSION, json=bad_request),
            await http.put(
                f"{TASK_RUNS}/c", params=VERSION, json={"properties": {"runRequest": "x"}}
            ),
            await http.patch(f"{TASK_RUNS}/missing", params=VERSION, json={"properties": {}}),
            await http.get(TASK_RUNS, params=VERSION),
        ]

    empty, unknown_type, not_object, missing, listed = session(services, steps)
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "InvalidRequestContent"
    assert unknown_type.status_code == 400
    assert unknown_type.json()["error"]["code"] == "InvalidParameter"
    assert not_object.status_code == 400
    assert missing.status_code == 404
    assert listed.json()["value"] == []


def test_a_shown_run_request_keeps_none_of_its_secrets() -> None:
    request = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": "c3RlcHM6IFtd",
        "encodedValuesContent": "cGFzczogc2VjcmV0",
        "values": [{"name": "a", "value": "open"}, {"name": "b", "value": "x", "isSecret": True}],
        "credentials": {
            "customRegistries": {
                "reg.example": {
                    "userName": {"type": "Opaque", "value": "u"},
                    "password": {"type": "Opaque", "value": "p"},
                }
            }
        },
    }
    assert shown(request) == {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": "c3RlcHM6IFtd",
        "values": [{"name": "a", "value": "open"}, {"name": "b", "isSecret": True}],
        "credentials": {"customRegistries": {"reg.example": {}}},
    }
