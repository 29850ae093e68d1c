#!/usr/bin/env python3
"""The portal's server time per page on a repository with 10,000 tags (issue 18: each
page under 200 ms of server time).

Makes the registry in this process on a temporary data directory: a few small images
pushed through `Uploads` and `Manifests` (as a push stores them), then the tags written
in one transaction through the metadata layer (`Transaction.set_tag`, what a push's tag
move runs), which is cheap; then starts a real `dockyard serve` on a free loopback port
with the admin user, signs in to the portal with httpx and asks each page --repeat
times, one request at a time. Each request's server time is the `ms` of its line in the
server's access log (`dockyard.access`), not the client's clock.

    bench/portal.py [--tags 10000] [--repeat 20] [--json OUT]

The server is stopped by PID and the data directory removed afterwards."""

from __future__ import annotations

import argparse
import asyncio
import gzip
import io
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from compare import owner_identity

from dockyard.core.digests import digest_bytes as sha256_digest
from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings

ADMIN_PASSWORD = "bench-portal-admin"
REPO = "bench/app"
IMAGES = 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _layer(i: int) -> bytes:
    """A small gzipped tar: a text file, a binary and a directory."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in ((f"etc/hello-{i}", b"hello\n" * 100), ("bin/tool", os.urandom(4096))):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_registry(data_dir: Path, tags: int) -> str:
    """IMAGES images and `tags` tags over them, round-robin; returns one image's digest."""
    settings = load_settings(None, data_dir=data_dir, admin_password=ADMIN_PASSWORD)
    prepare(settings)
    services = build_services(settings)
    try:
        registry = services.registries.all()[0]
        digests = []
        for i in range(IMAGES):
            config = json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "history": [{"created_by": f"RUN step {i}"}],
                    "rootfs": {"type": "layers", "diff_ids": []},
                }
            ).encode()
            layer = _layer(i)
            for blob in (config, layer):
                asyncio.run(
                    services.uploads.upload_whole(
                        registry, REPO, sha256_digest(blob), _once(blob), len(blob)
                    )
                )
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": sha256_digest(config),
                        "size": len(config),
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": sha256_digest(layer),
                            "size": len(layer),
                        }
                    ],
                }
            ).encode()
            result = services.manifests.put(registry, REPO, f"t{i:05d}", manifest, OCI_MANIFEST)
            digests.append(result.digest)
        with services.meta.transaction() as tx:
            repository_id = tx.repository_id(registry.id, REPO)
            assert repository_id is not None
            for i in range(IMAGES, tags):
                tx.set_tag(repository_id, f"t{i:05d}", digests[i % IMAGES])
        return digests[0]
    finally:
        services.close()


def _log_lines(log: Path) -> list[dict]:
    lines = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"dockyard.access"' in line:
            lines.append(json.loads(line))
    return lines


def sign_in(http: httpx.Client, username: str, password: str) -> None:
    form = http.get("/portal/signin")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    signed = http.post(
        "/portal/signin", data={"csrf": csrf.group(1), "username": username, "password": password}
    )
    assert signed.status_code == 303, signed.text


def owner_pages(url: str, log: Path, owner: tuple[str, str], repeat: int) -> dict[str, list[float]]:
    """The pages behind the management API's rights (the admin user has none of them),
    as an identity with Owner over the server."""
    base = "/portal/r/dockyard"
    pages = {
        "webhooks": f"{base}/webhooks",
        "replications": f"{base}/replications",
        "tasks": f"{base}/tasks",
        "audit log": f"{base}/audit",
        "audit log (login events)": f"{base}/audit?kind=login",
        "access (scope maps, tokens, roles, network, cache rules)": f"{base}/access",
        "usage (30 days)": f"{base}/usage",
    }
    times: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        sign_in(http, *owner)
        for name, path in pages.items():
            times[name] = _timed(http, log, path, repeat)
    return times


def _timed(http: httpx.Client, log: Path, path: str, repeat: int) -> list[float]:
    """`path` asked `repeat` times after one warm-up: its server times from the log."""
    warm = http.get(path)
    assert warm.status_code == 200, (path, warm.status_code, warm.text[:500])
    time.sleep(0.2)
    before = len(_log_lines(log))
    for _ in range(repeat):
        response = http.get(path)
        assert response.status_code == 200, (path, response.status_code)
    time.sleep(0.5)  # the access log line is written after the response
    return [float(line["ms"]) for line in _log_lines(log)[before:]][:repeat]


def measure(url: str, log: Path, pages: dict[str, str], repeat: int) -> dict[str, list[float]]:
    """Each page `repeat` times after one warm-up; its server times from the log."""
    times: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, timeout=30) as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        session_csrf = None
        for name, path in pages.items():
            warm = http.get(path)
            assert warm.status_code == 200, (path, warm.status_code, warm.text[:500])
            found = re.search(r'name="csrf" value="([^"]+)"', warm.text)
            session_csrf = session_csrf or (found.group(1) if found else None)
            time.sleep(0.2)
            before = len(_log_lines(log))
            for _ in range(repeat):
                response = http.get(path)
                assert response.status_code == 200, (path, response.status_code)
            time.sleep(0.5)  # the access log line is written after the response
            lines = _log_lines(log)[before:]
            times[name] = [float(line["ms"]) for line in lines][:repeat]
        assert session_csrf is not None
        lock = f"/portal/r/dockyard/repo/{REPO}/_tag/t05000/locks"
        before = len(_log_lines(log))
        for i in range(repeat):
            response = http.post(
                lock,
                data={"writeEnabled": "false" if i % 2 == 0 else "true"},
                headers={"X-CSRF-Token": session_csrf, "HX-Request": "true"},
            )
            assert response.status_code == 200, response.text
        time.sleep(0.5)
        times["lock toggle (POST)"] = [float(x["ms"]) for x in _log_lines(log)[before:]][:repeat]
    return times


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    server: subprocess.Popen | None = None
    try:
        data_dir, log = tmp / "data", tmp / "dockyard.log"
        started = time.monotonic()
        digest = make_registry(data_dir, args.tags)
        print(f"made {args.tags} tags in {time.monotonic() - started:.1f} s", file=sys.stderr)
        owner = owner_identity(Path(sys.executable).parent / "dockyard", data_dir)
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env["DOCKYARD_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        dockyard = Path(sys.executable).parent / "dockyard"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [
                    str(dockyard),
                    "serve",
                    "--listen",
                    f"127.0.0.1:{port}",
                    "--data-dir",
                    str(data_dir),
                ],
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"the server did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        repo = f"/portal/r/dockyard/repo/{REPO}"
        pages = {
            "registries": "/portal/",
            "repositories": "/portal/r/dockyard/",
            "repositories by update, prefix": "/portal/r/dockyard/?prefix=bench&sort=updated",
            "repository (first page by name)": repo,
            "repository (page after t05000)": f"{repo}?after=t05000",
            "repository (by last update)": f"{repo}?sort=updated",
            "manifest": f"{repo}/_manifest/{digest}",
            "image files (merged, /etc)": f"{repo}/_manifest/{digest}/_files?path=etc",
            "a file (layer 1)": f"{repo}/_manifest/{digest}/_file?path=etc/hello-0&layer=1",
            "two tags compared": f"{repo}/_compare?from=t00000&to=t00001",
        }
        times = measure(url, log, pages, args.repeat)
        times |= owner_pages(url, log, owner, args.repeat)
        print(f"{'page':40} {'median ms':>10} {'p95 ms':>8} {'max ms':>8}")
        summary = {}
        for name, values in times.items():
            values = sorted(values)
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            summary[name] = {"median": statistics.median(values), "p95": p95, "max": values[-1]}
            print(f"{name:40} {summary[name]['median']:10.1f} {p95:8.1f} {values[-1]:8.1f}")
        if args.json:
            args.json.write_text(json.dumps({"tags": args.tags, "pages": summary}, indent=2))
        return 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, 15)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
