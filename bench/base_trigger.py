#!/usr/bin/env python3
"""Base image trigger latency (issue 17's bench: under 2 s): from the push that moves a
base image's tag to the start of the dependent task's run.

Starts one embedded Dockyard server (logins on, git contexts on the local disk allowed)
on a free loopback port, pushes busybox as `base/busybox:1` over HTTP, makes a bare git
repository whose Dockerfile builds on it, creates a task with the base image trigger on
and runs it once for real (buildah), so that the task's base image is recorded. Then,
`--repeat` times: pushes the base again under another digest (the same layers, a new
annotation) and polls the task's runs every 20 ms until the triggered run is queued and
started; the run is canceled at once (its build is not what is measured). The clock
starts just before the manifest PUT is sent; the run's `createTime` and `startTime` are
the server's, on the same machine.

    .venv/bin/python bench/base_trigger.py [--repeat 5] [--json OUT]

Reports each push's latency to the run queued and started, and their medians. Run on an
idle machine, as root, with buildah, skopeo, runc and git installed (`make install`)."""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import images
from compare import ADMIN_PASSWORD, ADMIN_USER, DEFAULT_DOCKYARD, Server, log, one_server_bench
from git_repos import GitRepository
from tasks import owner

from dockyard.cli.management import Management

NAME = "base-trigger"
BASE = "base/busybox"
TASK = "benchapp"
VERSION = {"api-version": "2025-03-01-preview"}


def push_base(url: str, revision: int) -> float:
    """The base under a new digest; the time just before its manifest was sent."""
    image = images.busybox_image()
    manifest = json.loads(image.manifest)
    manifest["annotations"] = {"org.dockyard.bench.revision": str(revision)}
    with httpx.Client(base_url=url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=60) as http:
        for data in image.blobs.values():
            location = http.post(f"/v2/{BASE}/blobs/uploads/").headers["Location"]
            http.put(
                location, params={"digest": images.sha256_digest(data)}, content=data
            ).raise_for_status()
        started = time.time()
        http.put(
            f"/v2/{BASE}/manifests/1",
            content=images.json_bytes(manifest),
            headers={"Content-Type": image.media_type},
        ).raise_for_status()
    return started


def seconds(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def runs(api: Management) -> list[dict]:
    found = api.call(
        "GET",
        f"{api.registry_url('dockyard')}/runs",
        params=VERSION | {"$filter": f"TaskName eq '{TASK}'", "$top": "50"},
    )
    return found["value"]


def started_run(api: Management, count: int, limit: float = 30) -> dict:
    """The newest run's properties once the task has `count` runs and that one started."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = runs(api)
        if len(found) >= count and found[0]["properties"]["startTime"]:
            return found[0]["properties"]
        time.sleep(0.02)
    raise RuntimeError(f"no run number {count} started within {limit} s")


def prepare(api: Management, server: Server, tmp: Path) -> None:
    """The task made from a git repository building on the base, and run once."""
    host = server.url.removeprefix("http://")
    push_base(server.url, 0)
    repository = GitRepository(tmp / "repo")
    repository.commit({"Dockerfile": f"FROM {host}/{BASE}:1\nRUN true\n"})
    repository.push()
    registry = api.registry_url("dockyard")
    task = {
        "location": "westus",
        "properties": {
            "step": {
                "type": "Docker",
                "imageNames": [f"{TASK}:{{{{.Run.ID}}}}"],
                "isPushEnabled": True,
                "dockerFilePath": "Dockerfile",
                "contextPath": f"{repository.bare}#main",
            },
            "platform": {"os": "linux", "architecture": "amd64"},
            "trigger": {
                "baseImageTrigger": {
                    "name": "defaultBaseimageTriggerName",
                    "status": "Enabled",
                    "baseImageTriggerType": "Runtime",
                }
            },
        },
    }
    api.call("PUT", f"{registry}/tasks/{TASK}", params=VERSION, json=task)
    first = api.call(
        "POST",
        f"{registry}/scheduleRun",
        params=VERSION,
        json={"type": "TaskRunRequest", "taskId": f"{registry}/tasks/{TASK}"},
    )
    url = f"{registry}/runs/{first['properties']['runId']}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = api.call("GET", url, params=VERSION)["properties"]
        if run["status"] == "Succeeded":
            return
        if run["status"] in ("Failed", "Error", "Timeout", "Canceled"):
            raise RuntimeError(f"the first run ended {run['status']}: {run['runErrorMessage']}")
        time.sleep(0.5)
    raise RuntimeError("the first run did not finish")


def measure(a: argparse.Namespace, tmp: Path, server: Server) -> dict:
    host = server.url.removeprefix("http://")
    client_id, secret = owner(a.dockyard, tmp / NAME)
    latency: dict[str, list[float]] = {"queued": [], "started": []}
    with Management(host, client_id=client_id, client_secret=secret, insecure=True) as api:
        prepare(api, server, tmp)
        registry = api.registry_url("dockyard")
        for revision in range(1, a.repeat + 1):
            count = len(runs(api)) + 1
            pushed = push_base(server.url, revision)
            run = started_run(api, count)
            latency["queued"].append(seconds(run["createTime"]) - pushed)
            latency["started"].append(seconds(run["startTime"]) - pushed)
            api.call("POST", f"{registry}/runs/{run['runId']}/cancel", params=VERSION)
            log(
                f"push {revision}: queued {latency['queued'][-1]:.3f} s, "
                f"started {latency['started'][-1]:.3f} s"
            )
            time.sleep(1)  # the canceled run's clean-up, off the next measurement
    medians = {side: statistics.median(values) for side, values in latency.items()}
    log(f"median: queued {medians['queued']:.3f} s, started {medians['started']:.3f} s")
    return {"seconds": latency, "medians": medians}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5, help="base pushes measured")
    ap.add_argument("--json", type=Path, help=f"default bench/results/{NAME}-<time>.json")
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    a = ap.parse_args(argv)
    for tool in ("buildah", "skopeo", "runc", "unshare", "git"):
        if shutil.which(tool) is None:
            log(f"{tool} is missing: run make install")
            return 1
    env = {"DOCKYARD_TASKS__LOCAL_GIT_CONTEXTS": "true"}
    return one_server_bench(NAME, a.dockyard, a.json, lambda tmp, s: measure(a, tmp, s), env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
