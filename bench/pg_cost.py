#!/usr/bin/env python3
"""What a PostgreSQL node costs against an embedded (SQLite) one: CPU per warm manifest
GET, the database's statements and transactions per GET, and the transactions an idle
node and an idle worker run per second.

Starts a PostgreSQL with its durable defaults and `pg_stat_statements` (the test
suite's tests/postgres.py, on a free loopback port, stopped by its process id), then
`dockyard serve` processes started the same way (`--workers 1`, the admin user's
password set, one image pushed over HTTP with it, the GETs with a bearer token from
`/oauth2/token` as docker sends them; `--no-auth`: logins off): an embedded node, and a
PostgreSQL node beside a `dockyard worker` (`--no-in-process-worker`, the scale-out
deployment). GETs of the manifest by tag go
one after another over one keep-alive connection; CPU is the node's process group's
(`/proc/<pid>/stat` utime + stime of the server and its granian worker). Queries are
`pg_stat_statements`' calls (BEGIN and COMMIT included) but the audit log's pull rows
(counted apart: one per pull, inserted in a batch per second), transactions
`pg_stat_database.xact_commit` (autovacuum off, whose transactions it would count too),
which a backend publishes within 10 s of going idle: the counts wait for it. An idle
worker's looks at the outbox thin out over its first minute: the window is that long.
Run with the project's venv:

    .venv/bin/python bench/pg_cost.py [--requests 2000] [--idle-seconds 60] [--no-auth]
                                      [--quick] [--json OUT]

`make bench-scale` runs it after its own servers stopped (bench/scale.py --pg-cost).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import postgres  # noqa: E402
from compare import cpu_seconds_where  # noqa: E402

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
STATISTICS_SECONDS = 11.0  # PGSTAT_IDLE_INTERVAL (10 s), and a margin
START_TIMEOUT = 30.0
WARM_UP = 200
ADMIN = ("dockyard", "bench-admin-password")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environment() -> dict[str, str]:
    """This shell's environment without DOCKYARD_* (a developer's settings must not
    reach the measured processes), and the admin user's password."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
    return {**env, "DOCKYARD_ADMIN_PASSWORD": ADMIN[1]}


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """`python -m dockyard <args>` in a session of its own, ended (the whole group,
    by its id) when the block ends."""
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dockyard", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=_environment(),
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # granian workers left behind


def group_cpu(pgid: int) -> float:
    """CPU seconds the processes of group `pgid` have used so far."""
    return cpu_seconds_where(lambda fields: int(fields[2]) == pgid)  # pgrp


def wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dockyard exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{url} not healthy after {START_TIMEOUT:.0f} s:\n{log.read_text()}")


def push(client: httpx.Client) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    response = client.post(f"/v2/app/blobs/uploads/?digest={digest}", content=config)
    assert response.status_code == 201, response.text
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest,
                "size": len(config),
            },
            "layers": [],
        }
    )
    response = client.put(
        "/v2/app/manifests/v1", content=manifest, headers={"Content-Type": MANIFEST_TYPE}
    )
    assert response.status_code == 201, response.text


class Counters:
    """The database's counts of transactions and statements, from a connection of its
    own whose reads are left out."""

    def __init__(self, url: str) -> None:
        self._conn = psycopg.connect(url.replace("+psycopg", ""), autocommit=True)
        self._conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def transactions(self) -> int:
        """Transactions committed so far, as published (less this reader's)."""
        row = self._conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0])

    def statements(self) -> tuple[int, int]:
        """Statements run so far (less this reader's), and of them the audit log's row
        inserts (one per pull, written in a batch per second: `[audit] pulls`)."""
        row = self._conn.execute(
            "SELECT coalesce(sum(calls), 0),"
            " coalesce(sum(calls) FILTER (WHERE s.query LIKE 'INSERT INTO repository_events%'), 0)"
            " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
            " WHERE d.datname = current_database() AND s.query NOT LIKE '%pg_stat%'"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def close(self) -> None:
        self._conn.close()


def bearer(client: httpx.Client) -> dict[str, str]:
    """The Authorization header of a pull token, as docker gets it."""
    host = client.base_url.netloc.decode()
    params = {"service": host, "scope": "repository:app:pull"}
    response = client.get("/oauth2/token", params=params, auth=ADMIN)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def gets(
    url: str, pgid: int, requests: int, counters: Counters | None, auth: bool
) -> dict[str, float]:
    """CPU per warm GET of the manifest by tag (and the database's counts per GET)."""
    with httpx.Client(base_url=url, timeout=30.0, auth=ADMIN if auth else None) as client:
        push(client)
        headers = {"Accept": MANIFEST_TYPE, **(bearer(client) if auth else {})}
        client.auth = None
        for _ in range(WARM_UP):
            assert client.get("/v2/app/manifests/v1", headers=headers).status_code == 200
        if counters is not None:
            time.sleep(STATISTICS_SECONDS)
            transactions, statements = counters.transactions(), counters.statements()
        cpu, wall = group_cpu(pgid), time.perf_counter()
        for _ in range(requests):
            client.get("/v2/app/manifests/v1", headers=headers)
        wall, cpu = time.perf_counter() - wall, group_cpu(pgid) - cpu
    result = {"cpu_ms_per_get": cpu / requests * 1e3, "gets_per_second": requests / wall}
    if counters is not None:
        time.sleep(STATISTICS_SECONDS)  # the last pulls' audit rows flushed meanwhile
        now = counters.statements()
        audit_rows = now[1] - statements[1]
        result["queries_per_get"] = (now[0] - statements[0] - audit_rows) / requests
        result["audit_rows_per_get"] = audit_rows / requests
        committed = counters.transactions() - transactions - 2  # less the two counts' own
        result["transactions_per_get"] = committed / requests
    return result


def idle_rate(counters: Counters, seconds: float) -> tuple[float, float]:
    """Transactions and statements per second the database ran over `seconds` (less
    the counts' own), after STATISTICS_SECONDS for what ran before to be published."""
    time.sleep(STATISTICS_SECONDS)
    transactions, statements = counters.transactions(), counters.statements()
    time.sleep(seconds)
    return (
        (counters.transactions() - transactions - 1) / seconds,
        (counters.statements()[0] - statements[0]) / seconds,
    )


def show(label: str, figures: dict[str, float]) -> None:
    print(f"{label:>16}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--no-auth", dest="auth", action="store_false", help="logins off")
    parser.add_argument("--json", type=Path, help="write the figures to this file as well")
    parser.add_argument(
        "--quick", action="store_true", help="500 GETs and 20 s idle windows (noisy figures)"
    )
    args = parser.parse_args()
    if args.quick:
        args.requests, args.idle_seconds = min(args.requests, 500), min(args.idle_seconds, 20.0)
    result: dict[str, dict[str, float] | float] = {}
    base = Path(tempfile.mkdtemp(prefix="dockyard-pg-cost-"))
    server = postgres.PostgresServer(durable=True)
    server.settings["shared_preload_libraries"] = "pg_stat_statements"
    server.settings["autovacuum"] = "off"  # its transactions would count as the nodes'
    server.start()
    try:
        serve = ["serve", "--workers", "1", "--log-level", "warning"]
        serve += [] if args.auth else ["--no-auth"]
        port = _free_port()
        embedded = [*serve, "--listen", f"127.0.0.1:{port}", "--data-dir", str(base / "embedded")]
        with process(embedded, base / "embedded.log") as proc:
            wait_healthy(f"http://127.0.0.1:{port}", proc, base / "embedded.log")
            embedded_figures = gets(
                f"http://127.0.0.1:{port}", proc.pid, args.requests, None, args.auth
            )
        show("embedded GET", embedded_figures)
        result["embedded_get"] = embedded_figures

        url = server.create_database("pgcost")
        subprocess.run(
            [sys.executable, "-m", "dockyard", "db", "upgrade", "--database-url", url],
            check=True,
            capture_output=True,
            env=_environment(),
        )
        counters = Counters(url)
        port = _free_port()
        node_dir = base / "node"
        node = [*serve, "--listen", f"127.0.0.1:{port}", "--data-dir", str(node_dir)]
        node += ["--database-url", url, "--no-in-process-worker"]
        try:
            with process(node, base / "node.log") as proc:
                wait_healthy(f"http://127.0.0.1:{port}", proc, base / "node.log")
                figures = gets(
                    f"http://127.0.0.1:{port}", proc.pid, args.requests, counters, args.auth
                )
                show("postgresql GET", figures)
                ratio = figures["cpu_ms_per_get"] / embedded_figures["cpu_ms_per_get"]
                print(f"{'CPU ratio':>16}: {ratio:.2f} x the embedded node's", flush=True)
                result["postgresql_get"], result["cpu_ratio"] = figures, ratio
                node_rate = idle_rate(counters, args.idle_seconds)
                result["idle_node"] = {
                    "transactions_per_s": node_rate[0],
                    "statements_per_s": node_rate[1],
                }
                show("idle node", result["idle_node"])
                worker = ["worker", "--data-dir", str(node_dir), "--database-url", url]
                with process(worker, base / "worker.log"):
                    both = idle_rate(counters, args.idle_seconds)
                result["idle_worker"] = {
                    "transactions_per_s": both[0] - node_rate[0],
                    "statements_per_s": both[1] - node_rate[1],
                }
                show("idle worker", result["idle_worker"])
                if args.json is not None:
                    args.json.write_text(json.dumps(result, indent=2) + "\n")
        finally:
            counters.close()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
