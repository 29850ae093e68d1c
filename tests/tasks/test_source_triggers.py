"""A task's push webhook in process (nothing executes the runs here): only a body signed
with a source trigger's secret is read; a signed push of a watched branch queues one
run with its `sourceTrigger`, anything else is answered with nothing queued and why.
The real git push through a hook is tests/integration/test_task_triggers.py's."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_from_bytes

import httpx
import orjson
import pytest
from test_api_runs import REGISTRY, VERSION, session

from dockyard.metadata.network import NetworkWrites
from dockyard.services import Services
from dockyard.tasks.source_triggers import sign

HOOK = "/_tasks/hooks/dockyard/app-task"
SECRET = "a-secret-of-our-own-choosing"
REPOSITORY = "https://github.com/owner/app.git"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )


def task(status: str = "Enabled", trigger_status: str = "Enabled", events=("commit",)) -> dict:
    return {
        "location": "westus",
        "properties": {
            "status": status,
            "step": {
                "type": "Docker",
                "imageNames": ["app:{{.Run.Commit}}"],
                "dockerFilePath": "Dockerfile",
                "contextPath": f"{REPOSITORY}#main",
            },
            "trigger": {
                "sourceTriggers": [
                    {
                        "name": "defaultSourceTriggerName",
                        "status": trigger_status,
                        "sourceTriggerEvents": list(events),
                        "sourceRepository": {
                            "sourceControlType": "Github",
                            "repositoryUrl": REPOSITORY,
                            "branch": "main",
                        },
                        "webhookSecret": SECRET,
                    }
                ]
            },
        },
    }


def push(ref: str = "refs/heads/main", after: str = COMMIT, url: str = REPOSITORY) -> bytes:
    return orjson.dumps(
        {"ref": ref, "before": "f" * 40, "after": after, "repository": {"clone_url": url}}
    )


def deliver(
    services: Services, body: bytes, definition: dict | None = None, **headers: str
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    """The task made, `body` delivered (signed unless headers say otherwise); the answer
    and the task's runs."""

    async def steps(http: httpx.AsyncClient) -> tuple[httpx.Response, list[dict[str, Any]]]:
        made = await http.put(
            f"{REGISTRY}/tasks/app-task", params=VERSION, json=definition or task()
        )
        assert made.status_code == 200, made.text
        sent = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, SECRET)} | headers
        answer = await http.post(HOOK, content=body, headers=sent)
        runs = await http.get(
            f"{REGISTRY}/runs", params=VERSION | {"$filter": "TaskName eq 'app-task'"}
        )
        return answer, runs.json()["value"]

    return session(services, steps)


def test_a_signed_push_queues_a_run_of_the_commit(services: Services) -> None:
    answer, runs = deliver(services, push(), **{"X-GitHub-Delivery": "d-1"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["queued"] == "ca1"
    [run] = runs
    assert run["properties"]["runType"] == "AutoBuild"
    assert run["properties"]["sourceTrigger"] == {
        "id": "d-1",
        "eventType": "commit",
        "commitId": COMMIT,
        "repositoryUrl": REPOSITORY,
        "branchName": "main",
        "providerType": "Github",
    }


@pytest.mark.parametrize(
    "signature",
    [None, sign(push(), "another-secret"), "sha256=" + "0" * 64, "sha1=abc"],
)
def test_a_body_not_signed_with_the_secret_queues_nothing(
    services: Services, signature: str | None
) -> None:
    headers = {"X-Hub-Signature-256": signature} if signature else {"X-Hub-Signature-256": ""}
    answer, runs = deliver(services, push(), **headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "Unauthorized" and runs == []


@pytest.mark.parametrize(
    ("body", "definition", "event"),
    [
        (push(ref="refs/heads/dev"), None, "push"),
        (push(ref="refs/tags/v1"), None, "push"),
        (push(after="0" * 40), None, "push"),  # the branch was deleted
        (push(url="https://github.com/owner/other.git"), None, "push"),
        (push(), task(trigger_status="Disabled"), "push"),
        (push(), task(events=("pullrequest",)), "push"),
        (push(), task(status="Disabled"), "push"),
        (b'{"zen": "hi"}', None, "ping"),
        (push(), None, "issues"),
    ],
)
def test_what_starts_nothing_is_answered_200(
    services: Services, body: bytes, definition: dict | None, event: str
) -> None:
    answer, runs = deliver(services, body, definition, **{"X-GitHub-Event": event})
    assert answer.status_code == 200, answer.text
    assert answer.json()["queued"] is None and answer.json()["message"]
    assert runs == []


def test_a_form_encoded_payload_is_read_too(services: Services) -> None:
    """GitHub's default content type, application/x-www-form-urlencoded."""
    body = b"payload=" + quote_from_bytes(push()).encode()
    answer, runs = deliver(services, body)
    assert answer.status_code == 202 and len(runs) == 1


def test_urls_of_the_same_repository_match(services: Services) -> None:
    answer, runs = deliver(services, push(url="https://GitHub.com/owner/app"))
    assert answer.status_code == 202 and len(runs) == 1


def test_a_signed_body_that_is_no_push_is_refused(services: Services) -> None:
    answer, runs = deliver(services, b"not json")
    assert answer.status_code == 400 and runs == []
    answer, runs = deliver(services, b'{"ref": "refs/heads/main"}')
    assert answer.status_code == 400 and runs == []


def test_an_unknown_task_or_registry_is_404(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await http.post("/_tasks/hooks/dockyard/nosuchtask", content=push()),
            await http.post("/_tasks/hooks/elsewhere/app-task", content=push()),
        ]

    for answer in session(services, steps):
        assert answer.status_code == 404, answer.text


def test_a_secret_is_made_when_none_is_given_and_kept_by_updates(services: Services) -> None:
    definition = task()
    del definition["properties"]["trigger"]["sourceTriggers"][0]["webhookSecret"]
    url = f"{REGISTRY}/tasks/app-task"

    async def steps(http: httpx.AsyncClient) -> list[dict]:
        await http.put(url, params=VERSION, json=definition)
        before = (await http.post(f"{url}/listDetails", params=VERSION)).json()
        await http.patch(url, params=VERSION, json={"properties": {"timeout": 900}})
        after = (await http.post(f"{url}/listDetails", params=VERSION)).json()
        shown = (await http.get(url, params=VERSION)).json()
        return [before, after, shown]

    before, after, shown = session(services, steps)
    secret = before["properties"]["trigger"]["sourceTriggers"][0]["webhookSecret"]
    assert len(secret) == 40
    assert after["properties"]["trigger"]["sourceTriggers"][0]["webhookSecret"] == secret
    assert shown["properties"]["trigger"]["sourceTriggers"][0]["webhookSecret"] is None


def test_the_registry_network_rules_do_not_guard_the_webhook(services: Services) -> None:
    """As on ACR, where the git host calls ACR Tasks, not the registry's endpoint."""
    registry = services.registries.for_host("localhost:5000")
    with services.meta.transaction() as tx:
        writes = NetworkWrites(tx)
        writes.set_access(registry.id, public_network_access=True, default_action="Deny")
        writes.add_rule(registry.id, "198.51.100.0/24", limit=200)

    async def steps(http: httpx.AsyncClient) -> list[httpx.Response]:
        await http.put(f"{REGISTRY}/tasks/app-task", params=VERSION, json=task())
        body = push()
        headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, SECRET)}
        return [await http.get("/v2/"), await http.post(HOOK, content=body, headers=headers)]

    refused, delivered = session(services, steps)
    assert refused.status_code == 403
    assert delivered.status_code == 202, delivered.text
