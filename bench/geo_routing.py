#!/usr/bin/env python3
"""How the global endpoint should forward a manifest GET: proxy it, or redirect it.

Starts one region (`dockyard serve`, no logins, one worker) and `dockyard router` in
front of it on loopback, pushes one small image, then times sequential manifest GETs on
one kept-alive connection each way:

- direct:   the region itself (the floor);
- proxy:    through the router, which streams the region's answer back;
- redirect: what a redirect would cost the client: the router's 307 (which first checks
            the client's right with a HEAD at the region, as it does for blobs), then
            the GET at the region.

The three ways take turns, request by request. Prints p50 and p99 in milliseconds per
way. Both processes are stopped by PID and the
temporary directory removed afterwards.

    .venv/bin/python bench/geo_routing.py [--requests N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
DOCKYARD = REPO / ".venv" / "bin" / "dockyard"
SECRET = "bench-peer-secret-0123456789"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_image(base: str) -> tuple[str, str]:
    """One config blob and its manifest, tagged `1`: the manifest path and the blob's."""
    config = b'{"architecture":"amd64","os":"linux"}'
    with httpx.Client(base_url=base) as http:
        started = http.post("/v2/bench/app/blobs/uploads/")
        put = http.put(
            started.headers["Location"], params={"digest": digest(config)}, content=config
        )
        put.raise_for_status()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": digest(config),
                    "size": len(config),
                },
                "layers": [],
            }
        ).encode()
        http.put(
            "/v2/bench/app/manifests/1", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        ).raise_for_status()
    return "/v2/bench/app/manifests/1", f"/v2/bench/app/blobs/{digest(config)}"


def timed(requests: int, ways: dict[str, Callable[[], None]]) -> dict[str, list[float]]:
    """Each way's times, the ways taken in turn (round robin), so that what else the
    machine does weighs on all of them alike."""
    for one in ways.values():
        for _ in range(min(50, requests)):
            one()  # warm up
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(requests):
        for name, one in ways.items():
            started = time.perf_counter()
            one()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"{name:9s} p50 {statistics.median(ordered):6.2f} ms   p99 {p99:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="geo-routing-"))
    region_port, router_port = free_port(), free_port()
    region_url, router_url = f"http://127.0.0.1:{region_port}", f"http://127.0.0.1:{router_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    env.update(
        DOCKYARD_REGION__PEER_SECRET=SECRET,
        DOCKYARD_REGION__PEERS=json.dumps([{"name": "westus", "url": region_url}]),
    )
    processes = []
    try:
        with (work / "region.log").open("wb") as log:
            region_env = {**env, "DOCKYARD_REGION__PEERS": "[]"}
            processes.append(
                subprocess.Popen(
                    [
                        DOCKYARD,
                        "serve",
                        "--no-auth",
                        "--workers",
                        "1",
                        "--region",
                        "westus",
                        "--listen",
                        f"127.0.0.1:{region_port}",
                        "--data-dir",
                        str(work / "data"),
                    ],
                    stdout=log,
                    stderr=log,
                    env=region_env,
                    start_new_session=True,
                )
            )
        wait_for(region_url + "/healthz")
        with (work / "router.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [DOCKYARD, "router", "--listen", f"127.0.0.1:{router_port}"],
                    stdout=log,
                    stderr=log,
                    env=env,
                    start_new_session=True,
                )
            )
        wait_for(router_url + "/readyz")
        manifest, blob = push_image(region_url)
        accept = {"Accept": OCI_MANIFEST}
        with (
            httpx.Client(base_url=region_url) as region,
            httpx.Client(base_url=router_url) as router,
        ):

            def direct() -> None:
                region.get(manifest, headers=accept).raise_for_status()

            def proxied() -> None:
                router.get(manifest, headers=accept).raise_for_status()

            def redirected() -> None:
                answer = router.get(blob)
                assert answer.status_code == 307, answer.status_code
                region.get(manifest, headers=accept).raise_for_status()

            print(f"{args.requests} sequential manifest GETs each, one connection per host")
            ways = {"direct": direct, "proxy": proxied, "redirect": redirected}
            for name, times in timed(args.requests, ways).items():
                report(name, times)
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
