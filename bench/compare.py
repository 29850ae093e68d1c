#!/usr/bin/env python3
"""Benchmark Dockyard side by side with CNCF Distribution, the reference registry.

Starts both servers on free loopback ports, each with a fresh temporary data
directory, runs shared/bench/regbench.py in compare mode (A = Dockyard,
B = Distribution), samples the memory of both server process trees while it
runs, and prints it. Both servers are stopped (by PID) and the temporary
directories removed afterwards, also on failure, Ctrl-C or SIGTERM.

    bench/compare.py [--quick] [--phases P,...] [--repeat N] [--json OUT] [-- DOCKYARD_ARGS...]
    bench/compare.py --quick -- --workers 2
    bench/compare.py --reference-only --quick      # Distribution alone (no Dockyard needed)
    bench/compare.py --scale-out 2                 # both on S3 (SeaweedFS); Dockyard on
                                                   # PostgreSQL, two nodes behind nginx
    bench/compare.py --scale-out 1 -- --s3-redirect  # both answer blob GETs with a 307
                                                   # to the bucket (else both proxy)

With --scale-out, Distribution proxies blob bytes from S3 as Dockyard does by default
(`redirect: disable`), or redirects to pre-signed URLs when Dockyard's arguments
include --s3-redirect. `make bench-scale` (bench/scale.py) runs the whole scale-out
comparison in one go.

Raw results (regbench's JSON plus the memory figures) and the console log go to
bench/results/ unless --json says otherwise. Needs the Debian packages
docker-registry, wrk and apache2-utils, and installs them (apt-get) when missing.
Standard library only, except --scale-out, which starts a real PostgreSQL and
SeaweedFS with the test suite's own fixtures (tests/postgres.py, tests/seaweedfs.py,
tests/nginx.py; run it with the project's .venv python, as `make bench` does).
Linux only (/proc).
"""

import argparse
import contextlib
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REGBENCH = REPO.parent / "shared" / "bench" / "regbench.py"
DEFAULT_DOCKYARD = REPO / ".venv" / "bin" / "dockyard"
DISTRIBUTION_BIN = "/usr/bin/docker-registry"
# Debian package -> file that proves it is installed
APT_PACKAGES = {
    "docker-registry": DISTRIBUTION_BIN,
    "wrk": "/usr/bin/wrk",
    "apache2-utils": "/usr/bin/ab",
}
# Put before the caller's own arguments (a later --log-level wins): quiet, as
# Distribution is configured below, so neither pays for per-request logging.
DOCKYARD_DEFAULT_ARGS = ["--log-level", "warning"]
# The throwaway server's admin user, for regbench's logins.
ADMIN_USER = "dockyard"
ADMIN_PASSWORD = "regbench-" + os.urandom(8).hex()
PAGE = os.sysconf("SC_PAGE_SIZE")
CLK_TCK = os.sysconf("SC_CLK_TCK")
MIB = 1 << 20

# Distribution's usual configuration (as Debian ships it) without auth, on a
# loopback port; its access log is off and "error" is its quietest log level.
DISTRIBUTION_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
{storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""
DISTRIBUTION_FILESYSTEM = """\
  filesystem:
    rootdirectory: {root}"""
# The s3 driver with a custom endpoint addresses buckets by path, as SeaweedFS wants.
# `redirect.disable` makes it proxy blob bytes instead of answering with a pre-signed URL.
DISTRIBUTION_S3 = """\
  s3:
    accesskey: {access_key}
    secretkey: {secret_key}
    region: {region}
    regionendpoint: {endpoint}
    bucket: {bucket}
    secure: false
    v4auth: true
    rootdirectory: /distribution
  redirect:
    disable: {redirect_disable}"""


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived: unwind and clean up, as for Ctrl-C."""


def log(msg: str) -> None:
    print(f"compare: {msg}", flush=True)


# --------------------------------------------------------------------------
# Setup: packages and ports
# --------------------------------------------------------------------------


def ensure_apt_packages() -> None:
    missing = [pkg for pkg, path in APT_PACKAGES.items() if not os.access(path, os.X_OK)]
    if not missing:
        return
    log(f"installing apt packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], check=True, env=env
    )


def free_port(taken: set[int]) -> int:
    """A loopback port nobody listens on (a bind succeeds without SO_REUSEADDR)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken and port != 5000:
            return port
    raise RuntimeError("no free port found")


# --------------------------------------------------------------------------
# Process trees (Linux /proc)
# --------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, start time) of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[19])


def process_tree(root: int) -> dict[int, int]:
    """pid -> start time for root and all its descendants."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for ent in os.listdir("/proc"):
        if ent.isdigit() and (st := _stat(int(ent))):
            children.setdefault(st[0], []).append(int(ent))
            starts[int(ent)] = st[1]
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in starts:
            tree[pid] = starts[pid]
            todo.extend(children.get(pid, ()))
    return tree


def tree_memory(root: int) -> tuple[int, int, int]:
    """(RSS sum, PSS sum, process count), in bytes, over root's process tree.

    The RSS sum counts pages shared between forked workers once per process;
    PSS splits them, so it is the fairer figure for a multi-process server.
    """
    rss = pss = n = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/statm") as f:
                rss += int(f.read().split()[1]) * PAGE
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
                        break
            n += 1
        except (OSError, ValueError, IndexError):
            pass  # exited between the listing and the read
    return rss, pss, n


def cpu_seconds_where(select: Callable[[list[str]], bool]) -> float:
    """User + system CPU seconds used so far by the live processes whose /proc stat
    fields (those after the command name: state, ppid, pgrp, ...) `select` keeps."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if select(fields):
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLK_TCK


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by root's process tree (live processes)."""
    total = 0
    for pid in process_tree(root):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            pass  # exited between the listing and the read
    return total / CLK_TCK


class MemorySampler(threading.Thread):
    """Peak memory of each server's process tree, sampled every `interval` seconds."""

    def __init__(self, servers: list["Server"], interval: float = 0.5):
        super().__init__(daemon=True)
        self.servers, self.interval = servers, interval
        self.peak = {s.name: {"rss": 0, "pss": 0, "procs": 0} for s in servers}
        self.samples = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            for s in self.servers:
                rss, pss, n = tree_memory(s.pid)
                p = self.peak[s.name]
                p["rss"], p["pss"] = max(p["rss"], rss), max(p["pss"], pss)
                p["procs"] = max(p["procs"], n)
            self.samples += 1
            self._done.wait(self.interval)

    def finish(self) -> None:
        self._done.set()
        self.join()


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


class Server:
    def __init__(
        self,
        name: str,
        argv: list[str],
        health_url: str,
        log_path: Path,
        env: dict[str, str] | None = None,
    ):
        self.name, self.argv, self.health_url, self.log_path = name, argv, health_url, log_path
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        """The server's base URL (its health URL's scheme and address)."""
        parts = urllib.parse.urlsplit(self.health_url)
        return f"{parts.scheme}://{parts.netloc}"

    def start(self) -> None:
        log(f"starting {self.name}: {' '.join(self.argv)}")
        with open(self.log_path, "wb") as out:
            # A session of its own: a Ctrl-C in the terminal reaches the harness only,
            # which then stops the servers itself, by PID.
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=self.env,
            )

    def wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before it was ready"
                )
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as r:
                    if r.status == 200:
                        log(f"{self.name} ready (pid {self.pid}): {self.health_url}")
                        return
                    last = f"HTTP {r.status}"
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
            except (OSError, http.client.HTTPException) as e:  # URLError is an OSError
                last = str(e)
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s ({last})")

    def log_tail(self, lines: int = 10, width: int = 240) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(line[:width] for line in text.splitlines()[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server, SIGKILL it after `timeout`, then any child it left behind.

        Only processes this harness started get a signal: the server's PID, and the
        descendants listed (with their start times, against PID reuse) before it
        was told to stop.
        """
        if self.proc is None or self.proc.poll() is not None:
            return
        tree = process_tree(self.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop within {timeout:.0f} s: SIGKILL")
            self.proc.kill()
            self.proc.wait()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [
                pid
                for pid, start in tree.items()
                if pid != self.pid and (st := _stat(pid)) and st[1] == start
            ]
            if not left:
                break
            log(f"{self.name} left {len(left)} process(es) behind: {signal.Signals(sig).name}")
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            time.sleep(2)


# --------------------------------------------------------------------------
# Scale-out: PostgreSQL, SeaweedFS and nginx, from the test suite's fixtures
# --------------------------------------------------------------------------


class ScaleOutBackends:
    """The scale-out deployment's shared parts, started and stopped by this harness.

    PostgreSQL keeps its durable defaults (the tests turn fsync off); both registries get
    a bucket of their own in one SeaweedFS, so they pay for the same object store."""

    def __init__(self, dockyard: Path) -> None:
        # Imported here: they need the project's venv, and only --scale-out needs them.
        sys.path.insert(0, str(REPO / "tests"))
        import nginx
        import postgres
        import seaweedfs

        self.dockyard = dockyard
        self.seaweedfs_module = seaweedfs
        self.postgres = postgres.PostgresServer(durable=True)
        self.seaweedfs = seaweedfs.SeaweedFS()
        self.nginx_module = nginx
        self.nginx = nginx.Nginx()
        self.fronts: list = []
        self.database_url = ""
        self.buckets: dict[str, str] = {}

    def start(self) -> None:
        log("starting PostgreSQL and SeaweedFS")
        self.postgres.start()
        self.seaweedfs.start()
        self.database_url = self.postgres.create_database("bench")
        subprocess.run(
            [str(self.dockyard), "db", "upgrade", "--database-url", self.database_url],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        self.buckets = {name: self.seaweedfs.create_bucket(name) for name in ("dockyard", "dist")}

    def dockyard_args(self) -> list[str]:
        return [
            "--database-url",
            self.database_url,
            *self.seaweedfs.serve_args(self.buckets["dockyard"]),
        ]

    def distribution_storage(self, redirect: bool) -> str:
        """Distribution's `s3` driver on the same SeaweedFS, in a bucket of its own;
        `redirect` as Dockyard's `--s3-redirect`, so both proxy blob bytes or neither."""
        module = self.seaweedfs_module
        return DISTRIBUTION_S3.format(
            access_key=module.ACCESS_KEY,
            secret_key=module.SECRET_KEY,
            region=module.REGION,
            endpoint=self.seaweedfs.endpoint,
            bucket=self.buckets["dist"],
            redirect_disable="false" if redirect else "true",
        )

    def balance(self, nodes: list["Server"], offload: bool = False) -> None:
        """nginx round-robin over the nodes; with `offload`, serving blob bytes from the
        bucket when a node points it there (the nodes' `--nginx-offload /_blob/`)."""
        if offload:
            self.nginx.offload = self.seaweedfs.endpoint.removeprefix("http://")
        self.nginx.start([node.url.removeprefix("http://") for node in nodes])
        log(f"nginx (pid {self.nginx.proc.pid}) balances {self.balancer_url} over the nodes")

    def front(self, server: "Server") -> str:
        """Another nginx with the same configuration in front of one server (so a registry
        compared with the balanced nodes pays for the same proxy hop); its URL."""
        front = self.nginx_module.Nginx()
        self.fronts.append(front)
        front.start([server.url.removeprefix("http://")])
        log(f"nginx (pid {front.proc.pid}) proxies {front.url} to {server.name}")
        return front.url

    @property
    def balancer_url(self) -> str:
        return self.nginx.url

    def stop(self) -> None:
        for front in self.fronts:
            front.stop()
        self.nginx.stop()
        self.seaweedfs.stop()
        self.postgres.stop()


def dockyard_nodes(
    dockyard: Path,
    tmp: Path,
    port: int,
    args: list[str],
    backends: ScaleOutBackends | None,
    count: int = 1,
    name: str = "dockyard",
) -> list[Server]:
    """Dockyard's server(s): one, or (count=2) two nodes that share the database, the
    bucket and one secret key (the second on its own port and directory), told that
    the load balancer in front of them is a trusted proxy. `name` names the servers,
    their logs and data directories under tmp."""
    ports = [port]
    while len(ports) < count:
        ports.append(free_port({*ports, port}))
    shared = list(args)
    if count > 1 and backends is not None:
        shared += ["--secret-key-file", str(tmp / "secret.key"), "--trusted-proxy", "127.0.0.1"]
        shared += ["--login-server", backends.nginx.host]
    nodes = []
    for i, node_port in enumerate(ports, 1):
        node = name if count == 1 else f"{name}-node{i}"
        data_dir = tmp / node
        data_dir.mkdir()
        url = f"http://127.0.0.1:{node_port}"
        argv = [str(dockyard), "serve", "--listen", f"127.0.0.1:{node_port}"]
        argv += ["--data-dir", str(data_dir), *shared]
        env = {"DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD}
        nodes.append(Server(node, argv, f"{url}/healthz", tmp / f"{node}.log", env=env))
    return nodes


def distribution_server(tmp: Path, port: int, storage: str) -> Server:
    """CNCF Distribution on a loopback port with the given `storage:` section, its
    configuration and (for filesystem storage) its data under tmp."""
    (tmp / "distribution").mkdir()
    config = tmp / "distribution.yml"
    config.write_text(DISTRIBUTION_CONFIG.format(storage=storage, port=port))
    argv = [DISTRIBUTION_BIN, "serve", str(config)]
    url = f"http://127.0.0.1:{port}"
    server = Server("distribution", argv, f"{url}/v2/", tmp / "distribution.log")
    # Its AWS SDK panics at start-up on a custom CA bundle (its HTTP transport cannot
    # take one); SeaweedFS is plain HTTP here anyway.
    server.env.pop("AWS_CA_BUNDLE", None)
    return server


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    server_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, server_args = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="regbench --quick (~10x smaller)")
    ap.add_argument("--phases", help="regbench --phases (comma list)")
    ap.add_argument("--repeat", type=int, help="regbench --repeat (compare default: 3)")
    ap.add_argument(
        "--json",
        type=Path,
        help="result file (default bench/results/compare-<time>.json; "
        "the console log goes beside it as .log)",
    )
    ap.add_argument(
        "--no-auth",
        action="store_true",
        help="run Dockyard with --no-auth (by default it requires logins, and regbench "
        "logs in as its admin user through the token service)",
    )
    ap.add_argument(
        "--reference-only",
        action="store_true",
        help="benchmark Distribution alone (checks the harness and the machine)",
    )
    ap.add_argument(
        "--scale-out",
        type=int,
        choices=(1, 2),
        metavar="NODES",
        help="both registries on S3 (a SeaweedFS started here, a bucket each), Dockyard "
        "on a PostgreSQL started here, as NODES nodes (2: behind nginx, round-robin)",
    )
    ap.add_argument(
        "--dockyard",
        type=Path,
        default=DEFAULT_DOCKYARD,
        help=f"dockyard executable (default {DEFAULT_DOCKYARD.relative_to(REPO)})",
    )
    ap.add_argument(
        "--regbench",
        type=Path,
        default=DEFAULT_REGBENCH,
        help="path of regbench.py (default ../shared/bench/regbench.py)",
    )
    ap.add_argument(
        "--start-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for each server to answer (default 60)",
    )
    a = ap.parse_args(argv)
    a.server_args = server_args
    return a


def run_regbench(
    cmd: list[str], log_file: Path, on_line: Callable[[str], None] | None = None
) -> int:
    """Run regbench, echoing its output and copying it into log_file; `on_line` sees
    each line as it arrives (to time the phases)."""
    log("running: " + " ".join(cmd))
    with open(log_file, "a") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                out.write(line)
                if on_line is not None:
                    on_line(line)
            return proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: stop regbench too (it never deletes)
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def git_describe() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def build_regbench_cmd(
    a: argparse.Namespace, servers: list["Server"], urls: list[str], out_json: Path
) -> list[str]:
    cmd = [sys.executable, "-u", str(a.regbench)]
    if len(urls) == 1:
        cmd += [urls[0], "--pid", str(servers[0].pid)]
    else:
        # regbench follows one process tree per registry: of two nodes, the first's.
        cmd += ["--compare", *urls, "--pids", str(servers[0].pid), str(servers[-1].pid)]
    cmd += ["--json", str(out_json)]
    if a.quick:
        cmd.append("--quick")
    if a.phases:
        cmd += ["--phases", a.phases]
    if a.repeat:
        cmd += ["--repeat", str(a.repeat)]
    if not a.reference_only and not a.no_auth:
        # Dockyard requires logins (Distribution runs open and ignores these).
        cmd += ["--user", ADMIN_USER, "--password", ADMIN_PASSWORD]
    return cmd


def report(a, servers, sampler, rc, elapsed, out_json: Path, out_log: Path) -> None:
    """Print peak memory, and add it (with the run's settings) to log and JSON."""
    lines = []
    for s in servers:
        p = sampler.peak[s.name]
        lines.append(
            f"compare: {s.name} peak memory (process tree, up to {p['procs']} processes): "
            f"RSS {p['rss'] / MIB:.1f} MiB, PSS {p['pss'] / MIB:.1f} MiB"
        )
    lines.append(f"compare: regbench exit {rc}, {elapsed:.0f} s in all")
    print("\n".join(lines), flush=True)
    with open(out_log, "a") as f:
        f.write("\n".join(lines) + "\n")
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(out_json.read_text())
        data["compare"] = {
            "git": git_describe(),
            "dockyard_args": a.server_args,
            "reference_only": a.reference_only,
            "quick": a.quick,
            "elapsed_s": round(elapsed, 1),
            "regbench_exit": rc,
            "peak_memory_bytes": sampler.peak,
            "memory_samples": sampler.samples,
        }
        out_json.write_text(json.dumps(data, indent=1))
    log(f"results: {out_json} and {out_log.name}")


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if not a.regbench.is_file():
        sys.exit(f"compare: regbench not found at {a.regbench} (use --regbench PATH)")
    if not a.reference_only and not os.access(a.dockyard, os.X_OK):
        sys.exit(f"compare: {a.dockyard} not found: run `make install` (or use --reference-only)")
    ensure_apt_packages()

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    kind = "reference" if a.reference_only else "compare"
    name = f"{kind}-{stamp}{'-quick' if a.quick else ''}.json"
    out_json = (a.json or REPO / "bench" / "results" / name).resolve()
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_log = out_json.with_suffix(".log")

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-"))
    servers: list[Server] = []
    urls: list[str] = []
    sampler: MemorySampler | None = None
    backends = ScaleOutBackends(a.dockyard) if a.scale_out else None
    started = time.monotonic()
    rc = 1
    try:
        port_a = free_port(set())
        port_b = free_port({port_a})
        dockyard_args = [*DOCKYARD_DEFAULT_ARGS, *a.server_args]
        if a.no_auth:
            dockyard_args.append("--no-auth")
        storage = DISTRIBUTION_FILESYSTEM.format(root=tmp / "distribution")
        if backends is not None:
            backends.start()
            dockyard_args += backends.dockyard_args()
            storage = backends.distribution_storage(redirect="--s3-redirect" in a.server_args)
        if not a.reference_only:
            nodes = dockyard_nodes(
                a.dockyard, tmp, port_a, dockyard_args, backends, count=a.scale_out or 1
            )
            servers += nodes
            urls.append(nodes[0].url)
        distribution = distribution_server(tmp, port_b, storage)
        servers.append(distribution)
        urls.append(distribution.url)

        for s in servers:
            s.start()
            # A second node shares the first's secret key, made by its first start.
            s.wait_ready(a.start_timeout)
        if backends is not None and a.scale_out == 2 and not a.reference_only:
            backends.balance(servers[:2])
            urls[0] = backends.balancer_url

        sampler = MemorySampler(servers)
        sampler.start()
        rc = run_regbench(build_regbench_cmd(a, servers, urls, out_json), out_log)
        sampler.finish()
        report(a, servers, sampler, rc, time.monotonic() - started, out_json, out_log)
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({e or 'SIGINT'}): cleaning up")
        rc = 130
    except RuntimeError as e:
        log(f"FAILED: {e}")
        rc = 1
    finally:
        stop_servers(servers, sampler, rc)
        if backends is not None:
            backends.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"stopped {', '.join(s.name for s in servers) or 'nothing'}; removed {tmp}")
    return rc


def stop_servers(servers: list["Server"], sampler: "MemorySampler | None", rc: int) -> None:
    """The end of a run, however it ended: no more signals until the clean-up is done,
    the sampler stopped, the servers' last log lines shown if the run failed, then the
    servers stopped (by PID)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sampler is not None and sampler.is_alive():
        sampler.finish()
    if rc != 0:
        for s in servers:
            if tail := s.log_tail():
                print(f"--- last lines of {s.name}'s log ---\n{tail}", flush=True)
    for s in servers:
        s.stop()


def owner_identity(dockyard: Path, data_dir: Path) -> tuple[str, str]:
    """An identity with Owner over the server whose data directory this is (`dockyard
    identity create`, offline): its client id and secret, for the management API and
    the portal."""
    command = [str(dockyard), "identity", "create", "bench-owner", "--server-role", "Owner"]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir)], capture_output=True, text=True, check=True
    )
    found = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    return found["username"].strip(), found["secret"].strip()


def servers_bench(
    name: str,
    out_json: Path | None,
    start: Callable[[Path], list[Server]],
    measure: Callable[[Path, list[Server]], dict],
) -> int:
    """A bench of servers `start(tmp)` makes (not started yet): started, ready, then
    `measure(tmp, servers)` gives the results, written as JSON to `out_json` (default
    bench/results/NAME-<time>.json). The servers are stopped by their PIDs and the
    temporary directory removed, also on failure, Ctrl-C or SIGTERM; the exit code."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = (out_json or REPO / "bench" / "results" / f"{name}-{stamp}.json").resolve()
    out.parent.mkdir(parents=True, exist_ok=True)

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix=f"dockyard-bench-{name}-"))
    servers: list[Server] = []
    rc = 1
    try:
        servers += start(tmp)
        for server in servers:
            server.start()
            server.wait_ready(60)
        out.write_text(json.dumps(measure(tmp, servers), indent=1))
        log(f"results: {out}")
        rc = 0
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({e or 'SIGINT'}): cleaning up")
        rc = 130
    except Exception as e:  # a bench's own failure, told and cleaned up after
        log(f"FAILED: {type(e).__name__}: {e}")
        if isinstance(e, subprocess.CalledProcessError) and e.stderr:
            log(str(e.stderr)[-2000:])
    finally:
        stop_servers(servers, None, rc)
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


def one_server_bench(
    name: str,
    dockyard: Path,
    out_json: Path | None,
    measure: Callable[[Path, Server], dict],
    env: dict[str, str] | None = None,
) -> int:
    """`servers_bench` of one embedded Dockyard server (logins on, quiet logs) on a free
    loopback port, `env` added to its environment."""

    def start(tmp: Path) -> list[Server]:
        args = list(DOCKYARD_DEFAULT_ARGS)
        [server] = dockyard_nodes(dockyard, tmp, free_port(set()), args, None, name=name)
        server.env.update(env or {})
        return [server]

    return servers_bench(name, out_json, start, lambda tmp, servers: measure(tmp, servers[0]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
