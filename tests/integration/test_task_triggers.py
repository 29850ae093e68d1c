"""Tasks' source-commit and base-image triggers fired for real against a server with
logins on: a `git push` into a local bare repository whose `post-receive` hook calls the
task's webhook URL (signed as GitHub signs) queues a run that fetches the pushed commit
and builds it with buildah into the registry; a push that moves the tag of a base image
the task built on starts it again at once; a base image in another registry (a second
server) is polled. buildah, skopeo, runc and git come from `make install`; a test that
cannot run them fails."""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import images
import pytest
from conftest import RegistryServer
from git_repos import GitRepository
from test_tasks import read_log

from dockyard.cli.management import Management
from dockyard.tasks.source_triggers import sign

pytestmark = pytest.mark.timeout(600)

ADMIN_PASSWORD = "admin-secret-for-triggers"
VERSION = {"api-version": "2025-03-01-preview"}

# The post-receive hook: for each ref pushed, GitHub's push payload, signed, POSTed to
# the task's webhook URL; prints the answer (git shows it to the pusher as `remote:`).
HOOK = """#!{python}
import hashlib, hmac, json, sys, urllib.error, urllib.request

for line in sys.stdin:
    before, after, ref = line.split()
    body = json.dumps({{
        "ref": ref, "before": before, "after": after,
        "repository": {{"clone_url": "file://{bare}", "full_name": "tests/app"}},
    }}).encode()
    signature = "sha256=" + hmac.new({secret!r}.encode(), body, hashlib.sha256).hexdigest()
    request = urllib.request.Request({url!r}, data=body, method="POST", headers={{
        "Content-Type": "application/json", "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "delivery-" + after[:8], "X-Hub-Signature-256": signature,
    }})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            print("hook", answer.status, answer.read().decode())
    except urllib.error.HTTPError as error:
        print("hook", error.code, error.read().decode())
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    for tool in ("buildah", "skopeo", "runc", "unshare", "git"):
        assert shutil.which(tool), f"{tool} is missing: run make install"
    base = tmp_path_factory.mktemp("triggers")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(),
        env={
            "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DOCKYARD_TASKS__LOCAL_GIT_CONTEXTS": "true",
            "DOCKYARD_TASKS__BASE_IMAGE_POLL_SECONDS": "1",
        },
    ).start() as running:
        push_base(running.url, "base/busybox", "1", ("dockyard", ADMIN_PASSWORD))
        yield running


def push_base(url: str, repository: str, tag: str, auth: Any, revision: str = "1") -> str:
    """busybox as `repository:tag`; another `revision` gives the same image another
    digest (an annotation). The digest."""
    image = images.busybox_image()
    manifest = json.loads(image.manifest)
    manifest["annotations"] = {"org.dockyard.test.revision": revision}
    body = images.json_bytes(manifest)
    with httpx.Client(base_url=url, auth=auth, timeout=30) as http:
        for data in image.blobs.values():
            location = http.post(f"/v2/{repository}/blobs/uploads/").headers["Location"]
            done = http.put(location, params={"digest": images.sha256_digest(data)}, content=data)
            assert done.status_code == 201, done.text
        done = http.put(
            f"/v2/{repository}/manifests/{tag}",
            content=body,
            headers={"Content-Type": image.media_type},
        )
        assert done.status_code == 201, done.text
    return images.sha256_digest(body)


@pytest.fixture(scope="module")
def api(server: RegistryServer) -> Iterator[Management]:
    client_id, secret = server.owner()
    with Management(
        server.host, client_id=client_id, client_secret=secret, insecure=True
    ) as management:
        yield management


def create_task(api: Management, name: str, context: str, repository: Path | None) -> dict:
    """A Docker task as `az acr task create` makes it, with a source trigger on
    `repository` (main) when given, and the base image trigger on. Its details."""
    trigger: dict[str, Any] = {
        "baseImageTrigger": {
            "name": "defaultBaseimageTriggerName",
            "status": "Enabled",
            "baseImageTriggerType": "Runtime",
            "updateTriggerPayloadType": "Default",
        }
    }
    if repository is not None:
        trigger["sourceTriggers"] = [
            {
                "name": "defaultSourceTriggerName",
                "status": "Enabled",
                "sourceTriggerEvents": ["commit"],
                "sourceRepository": {
                    "sourceControlType": "Github",
                    "repositoryUrl": str(repository),
                    "branch": "main",
                    "sourceControlAuthProperties": {"tokenType": "PAT", "token": "pat-unused"},
                },
            }
        ]
    body = {
        "location": "westus",
        "properties": {
            "step": {
                "type": "Docker",
                "imageNames": [f"{name}:{{{{.Run.ID}}}}", f"{name}:{{{{.Run.Commit}}}}"],
                "isPushEnabled": True,
                "noCache": False,
                "dockerFilePath": "Dockerfile",
                "arguments": [],
                "contextPath": context,
            },
            "status": "Enabled",
            "platform": {"os": "linux", "architecture": "amd64"},
            "timeout": 3600,
            "trigger": trigger,
        },
    }
    url = f"{api.registry_url('dockyard')}/tasks/{name}"
    api.call("PUT", url, params=VERSION, json=body)
    return api.call("POST", f"{url}/listDetails", params=VERSION)


def runs_of(api: Management, task: str) -> list[dict]:
    found = api.call(
        "GET",
        f"{api.registry_url('dockyard')}/runs",
        params=VERSION | {"$filter": f"TaskName eq '{task}'"},
    )
    return found["value"]


def wait(api: Management, run_id: str, statuses: set[str], seconds: float = 300) -> dict:
    url = f"{api.registry_url('dockyard')}/runs/{run_id}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = api.call("GET", url, params=VERSION)
        if run["properties"]["status"] in statuses:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run['properties']['status']}")


def wait_for_run(api: Management, task: str, count: int, seconds: float = 60) -> list[dict]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = runs_of(api, task)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{task} has {len(runs_of(api, task))} runs, not {count}")


def dockerfile(server: RegistryServer, base: str = "base/busybox:1") -> dict[str, str]:
    return {
        "app/Dockerfile": f"FROM {server.host}/{base}\nCOPY hello.txt /hello.txt\n",
        "app/hello.txt": "hello from git\n",
    }


def test_a_git_push_builds_the_pushed_commit(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    repository = GitRepository(tmp_path / "repo")
    details = create_task(api, "gitapp", f"{repository.bare}#main:app", repository.bare)
    [source] = details["properties"]["trigger"]["sourceTriggers"]
    secret = source["webhookSecret"]
    assert len(secret) >= 32
    shown = api.call("GET", f"{api.registry_url('dockyard')}/tasks/gitapp", params=VERSION)
    assert shown["properties"]["trigger"]["sourceTriggers"][0]["webhookSecret"] is None
    repository.install_hook(
        "post-receive",
        HOOK.format(
            python=sys.executable,
            bare=repository.bare,
            secret=secret,
            url=f"{server.url}/_tasks/hooks/dockyard/gitapp",
        ),
    )

    commit = repository.commit(dockerfile(server))
    said = repository.push()
    assert "hook 202" in said, said
    [run] = wait_for_run(api, "gitapp", 1)
    properties = run["properties"]
    assert properties["runType"] == "AutoBuild"
    assert properties["sourceTrigger"] == {
        "id": f"delivery-{commit[:8]}",
        "eventType": "commit",
        "commitId": commit,
        "repositoryUrl": str(repository.bare),
        "branchName": "main",
        "providerType": "Github",
    }
    done = wait(api, properties["runId"], {"Succeeded", "Failed", "Error"})
    assert done["properties"]["status"] == "Succeeded", done["properties"]["runErrorMessage"]
    tags = {o["tag"]: o["digest"] for o in done["properties"]["outputImages"]}
    assert set(tags) == {properties["runId"], commit}
    with httpx.Client(base_url=server.url, auth=("dockyard", ADMIN_PASSWORD), timeout=30) as http:
        manifest = http.get(
            f"/v2/gitapp/manifests/{commit}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert manifest.status_code == 200
        assert manifest.headers["docker-content-digest"] == tags[commit]

    # The build recorded what it started from.
    task = api.call("GET", f"{api.registry_url('dockyard')}/tasks/gitapp", params=VERSION)
    [dependency] = task["properties"]["step"]["baseImageDependencies"]
    assert dependency["type"] == "RunTime" and dependency["registry"] == server.host
    assert (dependency["repository"], dependency["tag"]) == ("base/busybox", "1")
    assert dependency["digest"].startswith("sha256:")

    # A push to another branch, and a body signed with another secret, queue nothing.
    hook = f"{server.url}/_tasks/hooks/dockyard/gitapp"
    body = json.dumps(
        {
            "ref": "refs/heads/dev",
            "after": commit,
            "repository": {"clone_url": str(repository.bare)},
        }
    ).encode()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, secret)}
    other = httpx.post(hook, content=body, headers=headers)
    assert other.status_code == 200 and other.json()["queued"] is None, other.text
    main = body.replace(b"refs/heads/dev", b"refs/heads/main")
    for signature in (sign(main, "not-the-secret"), None):
        forged = httpx.post(
            hook,
            content=main,
            headers={"X-GitHub-Event": "push"}
            | ({"X-Hub-Signature-256": signature} if signature else {}),
        )
        assert forged.status_code == 401, forged.text
    unknown = httpx.post(f"{server.url}/_tasks/hooks/dockyard/nosuchtask", content=main)
    assert unknown.status_code == 404
    assert len(runs_of(api, "gitapp")) == 1
    # The trigger's token and secret are in no log, nor in the database in plain.
    run_log, _ = read_log(api, properties["runId"])
    assert b"pat-unused" not in run_log and secret.encode() not in run_log
    for path in [server.log_path, *server.data_dir.glob("dockyard.db*")]:
        data = path.read_bytes()
        assert b"pat-unused" not in data and secret.encode() not in data, path


def test_a_quick_build_from_a_git_repository(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    """`az acr build` with a repository for its context: sourceLocation is the URL."""
    repository = GitRepository(tmp_path / "repo")
    commit = repository.commit(dockerfile(server))
    repository.push()
    run = api.call(
        "POST",
        f"{api.registry_url('dockyard')}/scheduleRun",
        params=VERSION,
        json={
            "type": "DockerBuildRequest",
            "imageNames": ["quick:{{.Run.Branch}}-{{.Run.ID}}"],
            "isPushEnabled": True,
            "sourceLocation": f"file://{repository.bare}#main:app",
            "dockerFilePath": "Dockerfile",
            "platform": {"os": "linux", "architecture": "amd64"},
        },
    )
    run_id = run["properties"]["runId"]
    done = wait(api, run_id, {"Succeeded", "Failed", "Error"})
    assert done["properties"]["status"] == "Succeeded", done["properties"]["runErrorMessage"]
    [output] = done["properties"]["outputImages"]
    assert output["tag"] == f"main-{run_id}"
    log, _ = read_log(api, run_id)
    assert f"Commit: {commit}".encode() in log


def test_a_file_task_from_a_git_repository(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    """A FileTask task (`az acr task create -f acb.yaml -c <repository>`): its task file
    is read from the fetched commit, `{{.Run.Commit}}` names it, and its build step's
    base is followed by the base image trigger."""
    auth = ("dockyard", ADMIN_PASSWORD)
    push_base(server.url, "base/filebase", "1", auth, revision="1")
    repository = GitRepository(tmp_path / "repo")
    task_file = (
        "version: v1.1.0\nsteps:\n"
        "  - build: -t $Registry/filetask:{{.Run.Commit}} -f Dockerfile .\n"
        '  - push: ["$Registry/filetask:{{.Run.Commit}}"]\n'
    )
    commit = repository.commit({**dockerfile(server, "base/filebase:1"), "app/acb.yaml": task_file})
    repository.push()
    url = f"{api.registry_url('dockyard')}/tasks/filetask"
    body = {
        "location": "westus",
        "properties": {
            "step": {
                "type": "FileTask",
                "taskFilePath": "acb.yaml",
                "values": [],
                "contextPath": f"{repository.bare}#main:app",
            },
            "platform": {"os": "linux", "architecture": "amd64"},
            "trigger": {"baseImageTrigger": {"name": "base", "status": "Enabled"}},
        },
    }
    api.call("PUT", url, params=VERSION, json=body)
    run = api.call(
        "POST",
        f"{api.registry_url('dockyard')}/scheduleRun",
        params=VERSION,
        json={"type": "TaskRunRequest", "taskId": url, "overrideTaskStepProperties": {}},
    )
    done = wait(api, run["properties"]["runId"], {"Succeeded", "Failed", "Error"})
    assert done["properties"]["status"] == "Succeeded", done["properties"]["runErrorMessage"]
    assert done["properties"]["runType"] == "AutoRun"
    [output] = done["properties"]["outputImages"]
    assert (output["repository"], output["tag"]) == ("filetask", commit)
    task = api.call("GET", url, params=VERSION)
    [dependency] = task["properties"]["step"]["baseImageDependencies"]
    assert (dependency["type"], dependency["repository"]) == ("RunTime", "base/filebase")

    moved = push_base(server.url, "base/filebase", "1", auth, revision="2")
    runs = wait_for_run(api, "filetask", 2, seconds=30)
    assert runs[0]["properties"]["imageUpdateTrigger"]["images"][0]["digest"] == moved
    wait(api, runs[0]["properties"]["runId"], {"Succeeded", "Failed", "Error"})


def test_a_base_image_push_starts_the_dependent_task(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    auth = ("dockyard", ADMIN_PASSWORD)
    push_base(server.url, "base/moving", "1", auth, revision="1")
    repository = GitRepository(tmp_path / "repo")
    repository.commit(dockerfile(server, "base/moving:1"))
    repository.push()
    create_task(api, "baseapp", f"{repository.bare}#main:app", None)
    first = api.call(
        "POST",
        f"{api.registry_url('dockyard')}/scheduleRun",
        params=VERSION,
        json={
            "type": "TaskRunRequest",
            "taskId": f"{api.registry_url('dockyard')}/tasks/baseapp",
            "overrideTaskStepProperties": {"arguments": [], "values": []},
        },
    )
    done = wait(api, first["properties"]["runId"], {"Succeeded", "Failed", "Error"})
    assert done["properties"]["status"] == "Succeeded", done["properties"]["runErrorMessage"]

    # The same digest again starts nothing; a new one starts a run at once.
    push_base(server.url, "base/moving", "1", auth, revision="1")
    time.sleep(3)
    assert len(runs_of(api, "baseapp")) == 1
    moved = push_base(server.url, "base/moving", "1", auth, revision="2")
    started = time.monotonic()
    runs = wait_for_run(api, "baseapp", 2, seconds=30)
    assert time.monotonic() - started < 10
    trigger = runs[0]["properties"]["imageUpdateTrigger"]
    assert trigger["images"] == [
        {"registry": server.host, "repository": "base/moving", "tag": "1", "digest": moved}
    ]
    done = wait(api, runs[0]["properties"]["runId"], {"Succeeded", "Failed", "Error"})
    assert done["properties"]["status"] == "Succeeded", done["properties"]["runErrorMessage"]

    # With the trigger off, a move starts nothing.
    api.call(
        "PATCH",
        f"{api.registry_url('dockyard')}/tasks/baseapp",
        params=VERSION,
        json={"properties": {"trigger": {"baseImageTrigger": {"status": "Disabled"}}}},
    )
    push_base(server.url, "base/moving", "1", auth, revision="3")
    time.sleep(3)
    assert len(runs_of(api, "baseapp")) == 2


def test_a_base_image_elsewhere_is_polled(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    """The other registry is a second server over plain HTTP: the build cannot pull from
    it (a run reaches registries elsewhere over HTTPS), but what it starts from is
    recorded before the pull, and the poller sees the tag move."""
    with RegistryServer(tmp_path / "other", tmp_path / "other.log").start() as other:
        push_base(other.url, "lib/base", "1", None, revision="1")
        repository = GitRepository(tmp_path / "repo")
        repository.commit(
            {"app/Dockerfile": f"FROM {other.host}/lib/base:1\n", "app/hello.txt": "x\n"}
        )
        repository.push()
        create_task(api, "polled", f"{repository.bare}#main:app", None)
        first = api.call(
            "POST",
            f"{api.registry_url('dockyard')}/scheduleRun",
            params=VERSION,
            json={
                "type": "TaskRunRequest",
                "taskId": f"{api.registry_url('dockyard')}/tasks/polled",
                "overrideTaskStepProperties": {},
            },
        )
        wait(api, first["properties"]["runId"], {"Succeeded", "Failed", "Error"})
        url = f"{api.registry_url('dockyard')}/tasks/polled"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the poller's first look notes the digest
            task = api.call("GET", url, params=VERSION)
            dependencies = task["properties"]["step"].get("baseImageDependencies") or []
            if dependencies and dependencies[0]["digest"]:
                break
            time.sleep(0.5)
        assert dependencies[0]["registry"] == other.host and dependencies[0]["digest"]
        assert len(runs_of(api, "polled")) == 1
        moved = push_base(other.url, "lib/base", "1", None, revision="2")
        runs = wait_for_run(api, "polled", 2, seconds=30)
        assert runs[0]["properties"]["imageUpdateTrigger"]["images"][0]["digest"] == moved


def test_a_task_pushing_its_own_base_does_not_start_itself(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    """The patching pattern: a task that builds on `loop/app:1` and pushes it again moves
    the tag it depends on; that push is its own run's, so it starts nothing."""
    push_base(server.url, "loop/app", "1", ("dockyard", ADMIN_PASSWORD))
    repository = GitRepository(tmp_path / "repo")
    repository.commit(
        {
            "Dockerfile": f"FROM {server.host}/loop/app:1\nCOPY hello.txt /patched\n",
            "hello.txt": "x",
        }
    )
    repository.push()
    create_task(api, "selfapp", str(repository.bare), None)
    url = f"{api.registry_url('dockyard')}/tasks/selfapp"
    api.call(
        "PATCH", url, params=VERSION, json={"properties": {"step": {"imageNames": ["loop/app:1"]}}}
    )
    first = api.call(
        "POST",
        f"{api.registry_url('dockyard')}/scheduleRun",
        params=VERSION,
        json={"type": "TaskRunRequest", "taskId": url, "overrideTaskStepProperties": {}},
    )
    done = wait(api, first["properties"]["runId"], {"Succeeded", "Failed", "Error"})
    assert done["properties"]["status"] == "Succeeded", done["properties"]["runErrorMessage"]
    [output] = done["properties"]["outputImages"]
    assert output["repository"] == "loop/app" and output["tag"] == "1"
    time.sleep(4)
    assert len(runs_of(api, "selfapp")) == 1
    task = api.call("GET", url, params=VERSION)
    [dependency] = task["properties"]["step"]["baseImageDependencies"]
    assert dependency["digest"] == output["digest"]  # moved on all the same
