#!/usr/bin/env python3
"""Geo-replication's costs and delays (issue 14's bench), with three embedded servers
started alike on loopback: `west` and `east`, regions of one deployment replicating
the default registry to each other, and `alone`, a server without regions.

1. **Lag**: `--pushes` small images (a 1 KiB layer of its own, a config, a manifest
   and a tag each) pushed to west one after another as fast as one client goes (or
   `--rate` a second); a
   second client lists east's tags every 20 ms. A push's lag is the time from its
   manifest's 201 in west to its tag first listed in east (issue 14's target: p50 under
   1 s, p99 under 5 s).
2. **Push cost**: rounds of `--cost-pushes` such images pushed to west (replicating)
   and to alone, alternated `--repeat` times; images per second, replicating over
   alone (target: at least 0.9x).
3. **A large image**: `--large-mib` MiB in 64 MiB layers pushed to west; the time from
   its manifest's 201 until east lists its tag, against the time one client takes to
   pull the same layers from west (target: replication at least 0.8x the speed of a
   pull).

    .venv/bin/python bench/geo_replication.py [--pushes 1000] [--large-mib 1024] [--json OUT]

With `--pin-source`, the source region and the client share CPU 0 and the other region
has CPU 1 (`alone` and the client on CPU 0 too): the push cost is then the source
region's own (its sending), as with regions on machines of their own, not the
receiving region's work on the same two cores.

Logins are off (`--no-auth`) on all three, so no token traffic is measured; everything
else is each server's defaults (the outbox looks every second on SQLite). Servers are
stopped by their PIDs and the temporary directory removed, also on failure or Ctrl-C."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from compare import DEFAULT_DOCKYARD, Server, dockyard_nodes, free_port, log, servers_bench

SECRET = "bench-peer-secret-" + os.urandom(8).hex()
REPLICATIONS = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers"
    "/Microsoft.ContainerRegistry/registries/dockyard/replications"
)
ARM_VERSION = {"api-version": "2025-11-01"}
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER_MIB = 64


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(http: httpx.Client, repo: str, data: bytes) -> dict:
    """A whole blob in one POST (the monolithic upload); its descriptor."""
    digest = digest_of(data)
    done = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    done.raise_for_status()
    return {"digest": digest, "size": len(data)}


def push(http: httpx.Client, repo: str, tag: str, layers: list[bytes]) -> None:
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": put_blob(http, repo, config)
        | {"mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": [
            put_blob(http, repo, layer) | {"mediaType": "application/vnd.oci.image.layer.v1.tar"}
            for layer in layers
        ],
    }
    done = http.put(
        f"/v2/{repo}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"content-type": MANIFEST},
    )
    done.raise_for_status()


def listed(http: httpx.Client, repo: str) -> set[str]:
    answer = http.get(f"/v2/{repo}/tags/list", params={"n": "100000"})
    return set(answer.json().get("tags") or []) if answer.status_code == 200 else set()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def lag(west: Server, east: Server, pushes: int, rate: float = 0.0) -> dict:
    """Each push's lag; pushes one after another, or `rate` a second when given."""
    repo = "bench/lag"
    pushed: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def watch() -> None:
        with httpx.Client(base_url=east.url, timeout=30) as http:
            while len(seen) < pushes:
                now_listed = listed(http, repo)
                now = time.perf_counter()
                for tag in now_listed - seen.keys():
                    seen[tag] = now
                if done.is_set() and time.perf_counter() - done_at[0] > 120:
                    return
                time.sleep(0.02)

    done_at = [0.0]
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with httpx.Client(base_url=west.url, timeout=30) as http:
        for n in range(pushes):
            if rate:
                time.sleep(max(0.0, started + n / rate - time.perf_counter()))
            tag = f"t{n}"
            push(http, repo, tag, [os.urandom(1024)])
            pushed[tag] = time.perf_counter()
    pushing = time.perf_counter() - started
    done_at[0] = time.perf_counter()
    done.set()
    watcher.join()
    lags = [seen[tag] - pushed[tag] for tag in pushed if tag in seen]
    missing = pushes - len(lags)
    if missing:
        raise RuntimeError(f"{missing} of {pushes} images never reached east")
    result = {
        "pushes": pushes,
        "rate_asked": rate or "as fast as one client goes",
        "push_seconds": round(pushing, 2),
        "pushes_per_second": round(pushes / pushing, 1),
        "lag_p50_s": round(statistics.median(lags), 3),
        "lag_p99_s": round(percentile(lags, 0.99), 3),
        "lag_max_s": round(max(lags), 3),
        "all_in_east_after_last_push_s": round(max(seen.values()) - pushed[f"t{pushes - 1}"], 2),
    }
    log(f"lag: {result}")
    return result


def push_rate(server: Server, repo: str, count: int, first: int) -> float:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        started = time.perf_counter()
        for n in range(count):
            push(http, repo, f"c{first + n}", [os.urandom(1024)])
        return count / (time.perf_counter() - started)


def push_cost(west: Server, alone: Server, count: int, repeat: int) -> dict:
    rates: dict[str, list[float]] = {"replicating": [], "alone": []}
    for round_number in range(repeat):
        for name, server in (("replicating", west), ("alone", alone)):
            rate = push_rate(server, "bench/cost", count, round_number * count)
            rates[name].append(rate)
            log(f"push cost round {round_number + 1}, {name}: {rate:.1f} images/s")
    medians = {name: statistics.median(values) for name, values in rates.items()}
    result = {
        "images_per_second": rates,
        "median_replicating": round(medians["replicating"], 1),
        "median_alone": round(medians["alone"], 1),
        "ratio": round(medians["replicating"] / medians["alone"], 3),
    }
    log(f"push cost: {result}")
    return result


def large_image(west: Server, east: Server, mib: int) -> dict:
    repo = "bench/large"
    layers = [os.urandom(LAYER_MIB << 20) for _ in range(max(1, mib // LAYER_MIB))]
    size = sum(len(layer) for layer in layers)
    with httpx.Client(base_url=west.url, timeout=300) as http:
        push(http, repo, "v1", layers)
        pushed = time.perf_counter()
    with httpx.Client(base_url=east.url, timeout=30) as http:
        while "v1" not in listed(http, repo):
            if time.perf_counter() - pushed > 600:
                raise RuntimeError("the large image never reached east")
            time.sleep(0.05)
        replicated = time.perf_counter() - pushed
    with httpx.Client(base_url=west.url, timeout=300) as http:
        started = time.perf_counter()
        for layer in layers:
            with http.stream("GET", f"/v2/{repo}/blobs/{digest_of(layer)}") as answer:
                answer.raise_for_status()
                for _ in answer.iter_bytes(1 << 20):
                    pass
        pulled = time.perf_counter() - started
    result = {
        "mib": size >> 20,
        "replicated_s": round(replicated, 2),
        "replicated_mib_per_s": round((size >> 20) / replicated, 1),
        "pulled_s": round(pulled, 2),
        "pulled_mib_per_s": round((size >> 20) / pulled, 1),
        "replication_over_pull": round(pulled / replicated, 3),
    }
    log(f"large image: {result}")
    return result


def replicate(server: Server, region: str) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        done = http.put(f"{REPLICATIONS}/{region}", params=ARM_VERSION, json={"location": region})
        if done.status_code not in (200, 201):
            raise RuntimeError(f"replication to {region}: {done.status_code} {done.text}")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pushes", type=int, default=1000, help="images of the lag phase")
    ap.add_argument(
        "--rate", type=float, default=0.0, help="lag phase pushes a second (0: back to back)"
    )
    ap.add_argument("--lag-only", action="store_true", help="only the lag phase")
    ap.add_argument("--cost-pushes", type=int, default=200, help="images a push-cost round")
    ap.add_argument("--repeat", type=int, default=3, help="push-cost rounds of each side")
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--json", type=Path, help="default bench/results/geo-<time>.json")
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    ap.add_argument(
        "--pin-source",
        action="store_true",
        help="westus, alone and the client on CPU 0, eastus on CPU 1",
    )
    a = ap.parse_args(argv)
    cpus = {"westus": "0", "alone": "0", "eastus": "1"} if a.pin_source else {}
    if a.pin_source:
        os.sched_setaffinity(0, {0})  # the client (this process) beside the source

    def start(tmp: Path) -> list[Server]:
        ports: dict[str, int] = {}
        for name in ("westus", "eastus", "alone"):
            ports[name] = free_port(set(ports.values()))
        servers = []
        for name in ("westus", "eastus", "alone"):
            args = ["--log-level", "warning", "--no-auth"]
            [server] = dockyard_nodes(a.dockyard, tmp, ports[name], args, None, name=name)
            if name in cpus:
                server.argv = ["taskset", "-c", cpus[name], *server.argv]
            if name != "alone":
                other = "eastus" if name == "westus" else "westus"
                server.argv += ["--region", name]
                peers = [{"name": other, "url": f"http://127.0.0.1:{ports[other]}"}]
                server.env["DOCKYARD_REGION__PEERS"] = json.dumps(peers)
                server.env["DOCKYARD_REGION__PEER_SECRET"] = SECRET
            servers.append(server)
        return servers

    def measure(tmp: Path, servers: list[Server]) -> dict:
        west, east, alone = servers
        replicate(west, "eastus")
        replicate(east, "westus")
        results: dict = {"pinned": cpus, "lag": lag(west, east, a.pushes, a.rate)}
        if not a.lag_only:
            results["push_cost"] = push_cost(west, alone, a.cost_pushes, a.repeat)
            results["large_image"] = large_image(west, east, a.large_mib)
        return results

    return servers_bench("geo", a.json, start, measure)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
