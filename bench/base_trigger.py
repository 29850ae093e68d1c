#!/usr/bin/env python3
"""Base image trigger latency (issue 17's bench: under 2 s): from the push that moves a
base image's tag to the start of the dependent task's run.

Starts one embedded `dockyard serve` (SQLite and files, logins off, in-process background
work, git contexts on the local disk allowed) on a free loopback port, pushes busybox as
`base/busybox:1` over HTTP, makes a bare git repository whose Dockerfile builds on it,
creates a task with the base image trigger on and runs it once for real (buildah), so
the task's base image is recorded. Then, `--repeat` times: pushes the base again under
another digest (the same layers, a new annotation) and polls the runs until the
triggered run is queued and then started; the run is canceled at once (the build itself
is not what is measured). The clock starts just before the manifest PUT is sent; the
run's `createTime` and `startTime` are the server's, on the same machine. Reports each
latency and the medians; exits 1 when the median start is above `--target`. Run with
the project's venv:

    .venv/bin/python bench/base_trigger.py [--repeat 5] [--target 2.0]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import images
from git_repos import GitRepository

REGISTRY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers/"
    "Microsoft.ContainerRegistry/registries/dockyard"
)
VERSION = {"api-version": "2025-03-01-preview"}
BASE = "base/busybox"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(data_dir: Path, port: int, log: Path) -> subprocess.Popen:
    dockyard = Path(sys.executable).parent / "dockyard"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env["DOCKYARD_TASKS__LOCAL_GIT_CONTEXTS"] = "true"
    command = [str(dockyard), "serve", "--no-auth", "--listen", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "--data-dir", str(data_dir)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"the server did not start: see {log}")


def push_base(http: httpx.Client, revision: int) -> float:
    """The base under a new digest; the time just before its manifest was sent."""
    image = images.busybox_image()
    for data in image.blobs.values():
        location = http.post(f"/v2/{BASE}/blobs/uploads/").headers["Location"]
        done = http.put(location, params={"digest": images.sha256_digest(data)}, content=data)
        done.raise_for_status()
    manifest = json.loads(image.manifest)
    manifest["annotations"] = {"org.dockyard.bench.revision": str(revision)}
    started = time.time()
    done = http.put(
        f"/v2/{BASE}/manifests/1",
        content=images.json_bytes(manifest),
        headers={"Content-Type": image.media_type},
    )
    done.raise_for_status()
    return started


def seconds(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def runs(http: httpx.Client) -> list[dict]:
    found = http.get(
        f"{REGISTRY}/runs", params=VERSION | {"$filter": "TaskName eq 'benchapp'", "$top": "50"}
    )
    found.raise_for_status()
    return found.json()["value"]


def wait(http: httpx.Client, count: int, started: bool, limit: float) -> dict:
    """The newest run once there are `count` (and it started, if `started`)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = runs(http)
        if len(found) >= count and (not started or found[0]["properties"]["startTime"]):
            return found[0]
        time.sleep(0.02)
    raise RuntimeError(f"no run {count} within {limit} s")


def prepare(http: httpx.Client, host: str, root: Path) -> None:
    """The base pushed, the task made from a git repository, and run once for real."""
    push_base(http, 0)
    repository = GitRepository(root / "repo")
    repository.commit({"Dockerfile": f"FROM {host}/{BASE}:1\nRUN true\n"})
    repository.push()
    task = {
        "location": "westus",
        "properties": {
            "step": {
                "type": "Docker",
                "imageNames": ["benchapp:{{.Run.ID}}"],
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
    http.put(f"{REGISTRY}/tasks/benchapp", params=VERSION, json=task).raise_for_status()
    first = http.post(
        f"{REGISTRY}/scheduleRun",
        params=VERSION,
        json={"type": "TaskRunRequest", "taskId": f"{REGISTRY}/tasks/benchapp"},
    )
    first.raise_for_status()
    run_id = first.json()["properties"]["runId"]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        run = http.get(f"{REGISTRY}/runs/{run_id}", params=VERSION).json()["properties"]
        if run["status"] == "Succeeded":
            return
        if run["status"] in ("Failed", "Error", "Timeout", "Canceled"):
            raise RuntimeError(f"the first run ended {run['status']}: {run['runErrorMessage']}")
        time.sleep(0.5)
    raise RuntimeError("the first run did not finish")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="base pushes measured")
    parser.add_argument("--target", type=float, default=2.0, help="median start, seconds")
    a = parser.parse_args()
    for tool in ("buildah", "skopeo", "git"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: run make install", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="dockyard-base-trigger-") as directory:
        root = Path(directory)
        port = free_port()
        server = start_server(root / "data", port, root / "server.log")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                prepare(http, f"127.0.0.1:{port}", root)
                queued, started = [], []
                for revision in range(1, a.repeat + 1):
                    count = len(runs(http)) + 1
                    pushed = push_base(http, revision)
                    run = wait(http, count, True, 30)["properties"]
                    queued.append(seconds(run["createTime"]) - pushed)
                    started.append(seconds(run["startTime"]) - pushed)
                    cancel = f"{REGISTRY}/runs/{run['runId']}/cancel"
                    http.post(cancel, params=VERSION).raise_for_status()
                    print(
                        f"push {revision}: queued {queued[-1]:.3f} s, started {started[-1]:.3f} s"
                    )
                    time.sleep(1)  # the canceled run's clean-up, off the next measurement
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=60)
    median = statistics.median(started)
    print(
        f"median: queued {statistics.median(queued):.3f} s, started {median:.3f} s "
        f"(target < {a.target} s)"
    )
    return 0 if median < a.target else 1


if __name__ == "__main__":
    sys.exit(main())
