#!/usr/bin/env python3
"""Vulnerability scanning through a running server (issue 15's bench): how long a scan
on push takes, and what scanning on push costs the pushes themselves.

Starts one embedded Dockyard server (SQLite and files) on a free loopback port, imports
a generated OSV export into its vulnerability database (`dockyard vulndb import`: about
`--advisories` advisories, Debian 12 ranges for every source package of this machine's
dpkg status, PyPI and npm ranges for the generated image's packages, each with a CVSS
vector), then:

1. **Push latency**, scan on push switched off and on (`dockyard scan config`),
   alternating over `--repeat` rounds: each round pushes `--pushes` images one after
   another, each a gzip layer of its own holding this machine's dpkg status (750
   packages, so every scan has real work), its config and its manifest, timed from the
   first blob request to the manifest's 201. With scanning on, the scans run in the
   server's background work while the next pushes arrive; the round waits for all of
   them before the next (target: push latency unchanged, the scan is asynchronous).
2. **Scan time**: the test suite's busybox image and a generated image of about
   500 MB and 1,000 packages (bench/sbom.py's), each pushed with scanning on and timed
   from the manifest's 201 to its findings in `/acr/v1/_vulnerabilities/` (target:
   under 10 s).

    .venv/bin/python bench/scanning.py [--pushes 40] [--repeat 3] [--json OUT]

Run it on an idle machine; the server is stopped by its PID and the temporary directory
removed, also on failure or Ctrl-C."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import images
from compare import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DEFAULT_DOCKYARD,
    Server,
    log,
    one_server_bench,
)
from osv_facts import write_zip
from sbom import generated_image

from dockyard.core.digests import digest_bytes

STATUS = Path("/var/lib/dpkg/status")
OS_RELEASE = Path("/etc/os-release")
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CVSS = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:{0}/I:{0}/A:N"
CHUNK = 8 << 20


def dpkg_sources(status: str) -> list[tuple[str, str]]:
    """(source package, installed version) of each stanza: what Debian advisories name."""
    found = []
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): ?(.*)$", stanza, re.MULTILINE))
        if "Package" not in fields or "Version" not in fields:
            continue
        source = fields.get("Source", fields["Package"]).split(" ")[0]
        found.append((source, fields["Version"]))
    return found


def advisories(count: int) -> list[dict[str, Any]]:
    """About `count` OSV records: for each package, some fixed after the installed
    version (they match) and most fixed before it (they do not)."""
    targets = [("Debian:12", name, version) for name, version in dpkg_sources(STATUS.read_text())]
    targets += [("PyPI", f"package-{n}", f"1.{n}.0") for n in range(150)]
    targets += [("npm", f"module-{n}", f"2.{n}.0") for n in range(100)]
    per_package = max(1, count // len(targets))
    records = []
    for number, (ecosystem, name, installed) in enumerate(targets):
        for k in range(per_package):
            fixed = f"{installed}+fix{k}" if k % 10 == 0 else "0.0.1"
            if ecosystem == "npm" and k % 10 == 0:
                fixed = "99.0.0"
            records.append(
                {
                    "schema_version": "1.6.0",
                    "id": f"BENCH-{number}-{k}",
                    "modified": "2026-01-01T00:00:00Z",
                    "aliases": [],
                    "severity": [{"type": "CVSS_V3", "score": CVSS.format("HLN"[k % 3])}],
                    "affected": [
                        {
                            "package": {"ecosystem": ecosystem, "name": name},
                            "ranges": [
                                {
                                    "type": "SEMVER" if ecosystem == "npm" else "ECOSYSTEM",
                                    "events": [{"introduced": "0"}, {"fixed": fixed}],
                                }
                            ],
                        }
                    ],
                }
            )
    return records


def dockyard_cli(dockyard: Path, data_dir: Path, *args: str) -> str:
    done = subprocess.run(
        [str(dockyard), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as blob:
        while chunk := blob.read(CHUNK):
            yield chunk


def put_blob(client: httpx.Client, repo: str, blob: bytes | Path) -> dict[str, Any]:
    """One blob uploaded (a POST, then a PUT of the whole body); its descriptor."""
    if isinstance(blob, Path):
        digest = "sha256:" + _sha256_file(blob)
        size, body = blob.stat().st_size, file_chunks(blob)
    else:
        digest, size, body = digest_bytes(blob, "sha256"), len(blob), blob
    started = client.post(f"/v2/{repo}/blobs/uploads/")
    started.raise_for_status()
    done = client.put(started.headers["location"], params={"digest": digest}, content=body)
    done.raise_for_status()
    return {"digest": digest, "size": size}


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


def push(client: httpx.Client, repo: str, tag: str, layers: list[bytes | Path]) -> str:
    """An image of these gzip layers pushed; its manifest digest."""
    descriptors = [
        put_blob(client, repo, layer) | {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}
        for layer in layers
    ]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": put_blob(client, repo, config)
            | {"mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": descriptors,
        }
    ).encode()
    answer = client.put(
        f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"content-type": MANIFEST}
    )
    answer.raise_for_status()
    return answer.headers["docker-content-digest"]


def wait_scanned(client: httpx.Client, repo: str, digest: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = client.get(f"/acr/v1/_vulnerabilities/{repo}/_manifests/{digest}").json()
        if shown.get("status") == "scanned":
            return shown
        time.sleep(0.02)
    raise RuntimeError(f"{repo}@{digest} not scanned after {timeout:.0f} s")


def status_layer(number: int) -> bytes:
    """A small image's only layer: os-release, the dpkg status and a file that makes
    the layer (so the image) unique."""
    out = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w|") as tar,
    ):
        for name, data in (
            ("etc/os-release", OS_RELEASE.read_bytes()),
            ("var/lib/dpkg/status", STATUS.read_bytes()),
            ("etc/bench-image", str(number).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def push_round(
    client: httpx.Client, scanning: bool, pushes: int, first: int
) -> tuple[list[float], float]:
    """`pushes` images pushed one after another: each push's seconds, and (scanning
    on) how long after the last push the last scan ended."""
    repo = "bench/scan-on" if scanning else "bench/scan-off"
    layers = [status_layer(first + n) for n in range(pushes)]
    seconds, digests = [], []
    for n, layer in enumerate(layers):
        started = time.perf_counter()
        digests.append(push(client, repo, f"v{first + n}", [layer]))
        seconds.append(time.perf_counter() - started)
    pushed = time.perf_counter()
    if scanning:
        for digest in digests:
            wait_scanned(client, repo, digest, 300)
    return seconds, time.perf_counter() - pushed


def scan_time(client: httpx.Client, repo: str, layers: list[bytes | Path]) -> dict[str, Any]:
    digest = push(client, repo, "v1", layers)
    pushed = time.perf_counter()
    shown = wait_scanned(client, repo, digest, 600)
    return {
        "seconds": round(time.perf_counter() - pushed, 3),
        "findings": len(shown["findings"]),
        "worst": shown["worst"],
    }


def summary(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1] * 1000, 2),
    }


def measure(a: argparse.Namespace, tmp: Path, server: Server) -> dict[str, Any]:
    data_dir = tmp / "scanning"
    export = write_zip(tmp / "bench-osv.zip", advisories(a.advisories))
    log(dockyard_cli(a.dockyard, data_dir, "vulndb", "import", str(export)).strip())
    client = httpx.Client(base_url=server.url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=120)
    results: dict[str, Any] = {"rounds": []}
    with client:
        push(client, "bench/warm", "v1", [status_layer(-1)])  # connections, caches
        latencies: dict[bool, list[float]] = {False: [], True: []}
        for round_number in range(a.repeat):
            for scanning in (False, True):
                flag = "--on-push" if scanning else "--no-on-push"
                dockyard_cli(a.dockyard, data_dir, "scan", "config", flag)
                time.sleep(1)  # the server's configuration cache sees the change
                first = (round_number * 2 + scanning) * a.pushes
                seconds, drain = push_round(client, scanning, a.pushes, first)
                latencies[scanning] += seconds
                shown = summary(seconds) | {"scans_done_after_last_push_s": round(drain, 2)}
                results["rounds"].append({"scanning": scanning} | shown)
                log(f"round {round_number + 1}, scanning {'on' if scanning else 'off'}: {shown}")
        off, on = summary(latencies[False]), summary(latencies[True])
        results["push_latency"] = {
            "off": off,
            "on": on,
            "median_ratio_on_over_off": round(on["median_ms"] / off["median_ms"], 3),
        }
        log(f"push latency, scanning off {off}, on {on}")
        dockyard_cli(a.dockyard, data_dir, "scan", "config", "--on-push")
        time.sleep(1)
        results["scan_busybox"] = scan_time(client, "bench/busybox", [images.busybox_layer()[1]])
        log(f"busybox scanned: {results['scan_busybox']}")
        big = tmp / "generated"
        big.mkdir()
        layers: list[bytes | Path] = list(generated_image(big, a.filler_mb))
        results["generated_image_mb"] = round(sum(p.stat().st_size for p in layers) / 1e6, 1)
        results["scan_generated"] = scan_time(client, "bench/generated", layers)
        log(
            f"generated image ({results['generated_image_mb']} MB) scanned: "
            f"{results['scan_generated']}"
        )
    return results


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pushes", type=int, default=40, help="images pushed a round")
    ap.add_argument("--repeat", type=int, default=3, help="rounds of each mode")
    ap.add_argument("--advisories", type=int, default=30000)
    ap.add_argument("--filler-mb", type=int, default=350)
    ap.add_argument("--json", type=Path, help="default bench/results/scanning-<time>.json")
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    a = ap.parse_args(argv)
    return one_server_bench(
        "scanning", a.dockyard, a.json, lambda tmp, server: measure(a, tmp, server)
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
