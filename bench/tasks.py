#!/usr/bin/env python3
"""ACR Tasks' quick build against the same build by hand (issue 17's bench: at most
1.2x): a three-step Dockerfile on the test suite's busybox base, from `scheduleRun` to
the image pushed, against `buildah build && buildah push` run by hand on this machine.

Starts one embedded Dockyard server (logins on) on a free loopback port, pushes busybox
as `base/busybox:1`, makes an Owner identity for the management API, then alternates
over `--repeat` rounds:

- **task**: the context uploaded to the URL `listBuildSourceUploadUrl` hands out (not
  timed, as az uploads before it schedules), then timed from the `scheduleRun` POST until
  the run reads `Succeeded` (its image pushed; the run polled every 50 ms);
- **by hand**: `buildah build --pull` then `buildah push`, as root with the runs'
  isolation (`builder.ISOLATION`: runc), into a fresh storage directory of the same
  driver as the server's runs (`[tasks] storage_driver`), so that both pull the base
  and build from nothing.

    .venv/bin/python bench/tasks.py [--repeat 5] [--driver vfs] [--json OUT]

Reports each side's median seconds and their ratio. Run on an idle machine, as root,
with buildah, skopeo and runc installed (`make install`)."""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from dockyard.tasks.builder import ISOLATION

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import images
from compare import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DEFAULT_DOCKYARD,
    Server,
    log,
    one_server_bench,
    owner_identity,
)

from dockyard.cli.management import Management
from dockyard.cli.tasks import pack

BASE = "base/busybox"
# Three steps on the base: what a small service's Dockerfile does.
DOCKERFILE = """FROM {host}/base/busybox:1
COPY hello.txt /srv/hello.txt
RUN mkdir -p /srv/data && cp /srv/hello.txt /srv/data/ && echo built > /srv/built
LABEL org.opencontainers.image.title=bench
"""


def push_base(url: str) -> None:
    image = images.busybox_image()
    with httpx.Client(base_url=url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=60) as http:
        for data in image.blobs.values():
            location = http.post(f"/v2/{BASE}/blobs/uploads/").headers["Location"]
            http.put(
                location, params={"digest": images.sha256_digest(data)}, content=data
            ).raise_for_status()
        http.put(
            f"/v2/{BASE}/manifests/1",
            content=image.manifest,
            headers={"Content-Type": image.media_type},
        ).raise_for_status()


def by_task(api: Management, context: Path, number: int) -> float:
    data, _ = pack(context, context / "Dockerfile")
    registry = api.registry_url("dockyard")
    target = api.call("POST", f"{registry}/listBuildSourceUploadUrl")
    api.unauthenticated(
        "PUT", target["uploadUrl"], content=data, headers={"x-ms-blob-type": "BlockBlob"}
    ).raise_for_status()
    body = {
        "type": "DockerBuildRequest",
        "imageNames": [f"app/task:{number}"],
        "isPushEnabled": True,
        "sourceLocation": target["relativePath"],
        "dockerFilePath": "Dockerfile",
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    started = time.perf_counter()
    run = api.call("POST", f"{registry}/scheduleRun", json=body)
    url = f"{registry}/runs/{run['properties']['runId']}"
    while True:
        status = api.call("GET", url)["properties"]["status"]
        if status == "Succeeded":
            return time.perf_counter() - started
        if status in {"Failed", "Canceled", "Error", "Timeout"}:
            raise RuntimeError(f"the run ended {status}")
        time.sleep(0.05)


def by_hand(host: str, context: Path, storage: Path, driver: str, number: int) -> float:
    if storage.exists():
        shutil.rmtree(storage)
    buildah = ["buildah", "--root", str(storage / "root"), "--runroot", str(storage / "run")]
    buildah += ["--storage-driver", driver]
    creds = f"{ADMIN_USER}:{ADMIN_PASSWORD}"
    image = f"{host}/app/byhand:{number}"
    build = [*buildah, "build", "--quiet", *ISOLATION, "--pull", "--tls-verify=false"]
    started = time.perf_counter()
    subprocess.run(
        [*build, "--creds", creds, "--tag", image, str(context)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*buildah, "push", "--quiet", "--tls-verify=false", "--creds", creds, image],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - started
    subprocess.run([*buildah, "rmi", "--all", "--force"], capture_output=True)
    return seconds


def measure(a: argparse.Namespace, tmp: Path, server: Server) -> dict:
    host = server.url.removeprefix("http://")
    push_base(server.url)
    context = tmp / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(DOCKERFILE.format(host=host))
    (context / "hello.txt").write_text("hello from the context\n")
    client_id, secret = owner_identity(a.dockyard, tmp / "tasks")
    seconds: dict[str, list[float]] = {"task": [], "by_hand": []}
    with Management(host, client_id=client_id, client_secret=secret, insecure=True) as api:
        by_task(api, context, 0)  # warm: the server's first run, the page cache
        for number in range(1, a.repeat + 1):
            seconds["task"].append(by_task(api, context, number))
            seconds["by_hand"].append(by_hand(host, context, tmp / "byhand", a.driver, number))
            log(
                f"round {number}: task {seconds['task'][-1]:.2f} s, "
                f"by hand {seconds['by_hand'][-1]:.2f} s"
            )
    medians = {side: statistics.median(values) for side, values in seconds.items()}
    ratio = medians["task"] / medians["by_hand"]
    log(f"median: task {medians['task']:.2f} s, by hand {medians['by_hand']:.2f} s: {ratio:.2f}x")
    return {"seconds": seconds, "medians": medians, "ratio_task_over_by_hand": round(ratio, 3)}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--driver", default="vfs", help="the server's [tasks] storage_driver")
    ap.add_argument("--json", type=Path, help="default bench/results/tasks-<time>.json")
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    a = ap.parse_args(argv)
    for tool in ("buildah", "skopeo", "runc", "unshare"):
        if shutil.which(tool) is None:
            log(f"{tool} is missing: run make install")
            return 1
    env = {"DOCKYARD_TASKS__STORAGE_DRIVER": a.driver}
    return one_server_bench(
        "tasks", a.dockyard, a.json, lambda tmp, server: measure(a, tmp, server), env
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
