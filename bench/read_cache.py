#!/usr/bin/env python3
"""Manifest GETs by tag on PostgreSQL with the read cache and without, in process.

Starts a PostgreSQL with its durable defaults (the test suite's tests/postgres.py, on
a free loopback port, stopped by its process id) and, for each mode, a database of its
own with the app built as `dockyard serve` builds it (`[metadata] read_cache` on or
off, logins off, the background off), one image pushed through the app, then GETs of
its manifest by tag called straight on the ASGI app, one after another, as one worker
thread serves them. Modes alternate over the repetitions. Reports GETs per second, the
CPU per GET of this process and of PostgreSQL's, and the statements PostgreSQL ran per
GET (its transactions committed: every statement here is one, in autocommit). Run with
the project's venv:

    .venv/bin/python bench/read_cache.py [--requests 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import postgres  # noqa: E402
from compare import cpu_seconds_where  # noqa: E402

from dockyard.app import create_app  # noqa: E402
from dockyard.logs import configure_logging  # noqa: E402
from dockyard.metadata import migrate  # noqa: E402
from dockyard.metadata.engine import make_engine  # noqa: E402
from dockyard.server import prepare  # noqa: E402
from dockyard.services import build_services  # noqa: E402
from dockyard.settings import load_settings  # noqa: E402

HOST = "localhost:5000"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
STATISTICS_SECONDS = 11.0


async def call(app: Any, method: str, path: str, body: bytes = b"", **headers: str) -> int:
    """One request straight on the ASGI app; its status."""
    query = b""
    if "?" in path:
        path, _, rest = path.partition("?")
        query = rest.encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", HOST.encode())]
        + [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        + ([(b"content-length", str(len(body)).encode())] if body else []),
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 5000),
        "state": {},
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def push(app: Any) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    status = await call(app, "POST", f"/v2/app/blobs/uploads/?digest={config_digest}", config)
    assert status == 201, status
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    )
    status = await call(app, "PUT", "/v2/app/manifests/v1", manifest, content_type=MANIFEST_TYPE)
    assert status == 201, status


def server_cpu(server: postgres.PostgresServer) -> float:
    """CPU seconds PostgreSQL's processes (the postmaster's children: the backends, the
    writers) have used so far."""
    assert server.proc is not None
    postmaster = server.proc.pid
    return cpu_seconds_where(lambda fields: int(fields[1]) == postmaster)  # ppid


def committed(url: str) -> int:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0])


def measure(server: postgres.PostgresServer, read_cache: bool, requests: int) -> dict[str, float]:
    url = server.create_database("readcache")
    migrate.upgrade(make_engine(url))
    with tempfile.TemporaryDirectory(prefix="dockyard-read-cache-") as data_dir:
        settings = load_settings(
            None,
            data_dir=Path(data_dir),
            metadata={"url": url, "read_cache": read_cache},
            auth={"enabled": False},
            server={"log_level": "warning"},
        )
        configure_logging(settings.server.log_level)
        prepare(settings)
        services = build_services(settings)
        try:
            app = create_app(services, background=False)

            async def run() -> tuple[float, float, float, int]:
                await push(app)
                for _ in range(200):  # warm up: statements prepared, caches filled
                    status = await call(app, "GET", "/v2/app/manifests/v1", accept=MANIFEST_TYPE)
                    assert status == 200, status
                # An idle backend publishes its statistics within PGSTAT_IDLE_INTERVAL (10 s).
                time.sleep(STATISTICS_SECONDS)
                before = committed(url)
                wall, cpu, database = time.perf_counter(), time.process_time(), server_cpu(server)
                for _ in range(requests):
                    await call(app, "GET", "/v2/app/manifests/v1", accept=MANIFEST_TYPE)
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                database = server_cpu(server) - database
                time.sleep(STATISTICS_SECONDS)
                statements = committed(url) - before - 1  # less the first count's own
                return wall, cpu, database, statements

            wall, cpu, database, statements = asyncio.run(run())
        finally:
            services.close()
    return {
        "gets_per_second": requests / wall,
        "cpu_us_per_get": cpu / requests * 1e6,
        "postgresql_cpu_us_per_get": database / requests * 1e6,
        "statements_per_get": statements / requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = postgres.PostgresServer(durable=True)
    server.start()
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    try:
        for _ in range(args.repeat):
            for read_cache in (True, False):
                result = measure(server, read_cache, args.requests)
                results[read_cache].append(result)
                label = "cache" if read_cache else "no cache"
                print(f"{label:>8}: " + ", ".join(f"{k} {v:.2f}" for k, v in result.items()))
    finally:
        server.stop()
    for read_cache, runs in results.items():
        label = "cache" if read_cache else "no cache"
        medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(f"median {label:>8}: " + ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))


if __name__ == "__main__":
    main()
