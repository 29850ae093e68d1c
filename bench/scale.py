#!/usr/bin/env python3
"""Dockyard scaled out, against CNCF Distribution on the same object store and against
one embedded Dockyard node, in one run (`make bench-scale`).

Starts, on free loopback ports, with bench/compare.py's pieces and the test suite's
fixtures (tests/postgres.py, tests/seaweedfs.py, tests/nginx.py):

- a PostgreSQL with its durable defaults and one SeaweedFS (`weed server -s3`);
- the scale-out deployment: two Dockyard nodes on them (one database, one bucket, one
  secret key) behind a round-robin nginx, which fetches pulled blob bytes from the
  bucket itself when a node points it there (`--nginx-offload`, as docs/deploy.md
  configures it; --no-nginx-offload: the nodes proxy the bytes);
- CNCF Distribution (Debian `docker-registry`) with its `s3` driver on the same SeaweedFS
  endpoint, in a bucket of its own, with `redirect: disable: true`: it proxies blob
  bytes as the nodes do (with --s3-redirect among the Dockyard arguments, both redirect
  instead). It sits behind an nginx of its own with the balancer's configuration, so
  both registries pay for one proxy hop, as deployments behind a TLS front end do;
  --distribution-direct drops that hop;
- one embedded Dockyard node (SQLite and blob files in its data directory), reached
  directly: the simplest deployment, against which the scale-out one is weighed.

Then runs ../shared/bench/regbench.py twice in compare mode, scale-out as A each time:
against Distribution, then against the embedded node. It prints, per phase, both runs'
medians and ratios with issue 19's targets against Distribution (proxied pulls ≥ 1.0x,
push-large ≥ 1.5x), and the CPU each process group used while each phase ran (from
/proc, between regbench's result lines, in % of one core). Everything started is stopped
by its PID and the temporary directories removed, also on failure, Ctrl-C or SIGTERM.

    bench/scale.py [--quick] [--phases P,...] [--repeat N] [--json OUT] [-- DOCKYARD_ARGS...]
    bench/scale.py --quick --phases push-large,pull-large,pull-concurrent --repeat 1
    bench/scale.py --pg-cost        # and, once the servers stopped, bench/pg_cost.py

--pg-cost [SCRIPT] runs a separate measurement of a PostgreSQL node's CPU per manifest
GET against an embedded node's (default bench/pg_cost.py) after every server here has
stopped, so it has the machine to itself. Its contract: it takes `--json PATH` (and
`--quick` when this run has it), prints its own table, writes its figures to PATH as a
JSON object and exits 0; the figures are stored under "pg_cost" in this run's JSON.

Results (both regbench JSONs, the CPU per phase, peak memory) go to
bench/results/scale-<time>[-quick].json, the console log beside it as .log. Run with the
project's .venv python, as `make bench-scale` does. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from compare import (
    DEFAULT_DOCKYARD,
    DEFAULT_REGBENCH,
    DOCKYARD_DEFAULT_ARGS,
    MIB,
    REPO,
    Interrupted,
    MemorySampler,
    ScaleOutBackends,
    Server,
    build_regbench_cmd,
    distribution_server,
    dockyard_nodes,
    ensure_apt_packages,
    free_port,
    git_describe,
    run_regbench,
    stop_servers,
    tree_cpu_seconds,
)

# The phases issue 19 measures; regbench's tags-list and catalog can be added by --phases.
DEFAULT_PHASES = "push-small,push-large,pull-large,pull-concurrent,manifest-get"
DEFAULT_PG_COST = REPO / "bench" / "pg_cost.py"
# Issue 19: scale-out Dockyard / Distribution on the same store, at least.
TARGETS = {"push-large": 1.5, "pull-large": 1.0, "pull-concurrent": 1.0}
# The two regbench runs: name -> (label of A, label of B).
RUNS = {
    "vs-distribution": ("scale-out", "Distribution (S3)"),
    "vs-embedded": ("scale-out", "embedded"),
}
# The process groups whose CPU is shown for each side of each run (all are sampled).
SCALE_OUT_GROUPS = ["dockyard-node1", "dockyard-node2", "nginx", "postgresql", "seaweedfs"]
SHOWN_GROUPS = {
    "vs-distribution": {
        "A": SCALE_OUT_GROUPS,
        "B": ["distribution", "nginx-distribution", "seaweedfs"],
    },
    "vs-embedded": {"A": SCALE_OUT_GROUPS, "B": ["embedded"]},
}
# regbench's lines: a phase's result on one target ("... [A 2/3]"), and a metric's medians.
RESULT_LINE = re.compile(r"^(\S+)\s.*\[([AB]) (\d+)/\d+\]$")
MEDIAN_LINE = re.compile(
    r"^== (\S+)\s+A\s+\S+\s+B\s+\S+\s+(\S+)\s+A/B\s+\S+\s+\((higher|lower) is better"
)


def log(msg: str) -> None:
    print(f"scale: {msg}", flush=True)


class PhaseCpu:
    """The CPU each process group used while each phase ran on each target.

    regbench prints a phase's result lines as the phase ends on a target, and prints
    nothing while it runs, so the phase began at the line before (a result, a median or
    a preparation line): the CPU used between the two lines is the phase's."""

    def __init__(self, groups: dict[str, int], phases: list[str]) -> None:
        self.groups, self.phases = groups, phases
        self.calls: list[dict] = []
        self._last: tuple[str, int] | None = None
        self._mark()

    def _mark(self) -> None:
        self._t0 = time.monotonic()
        self._cpu0 = {name: tree_cpu_seconds(pid) for name, pid in self.groups.items()}

    def on_line(self, line: str) -> None:
        m = RESULT_LINE.match(line.rstrip())
        # A phase with several metrics prints them together: only its first line counts.
        if m and (m[2], int(m[3])) != self._last:
            self._last = (m[2], int(m[3]))
            wall = time.monotonic() - self._t0
            phase = next((p for p in self.phases if m[1].startswith(p)), m[1])
            cpu = {
                name: (tree_cpu_seconds(pid) - self._cpu0[name]) / wall
                for name, pid in self.groups.items()
            }
            self.calls.append(
                {"phase": phase, "target": m[2], "rep": int(m[3]), "wall_s": wall, "cpu": cpu}
            )
        self._mark()

    def medians(self) -> dict[str, dict[str, dict[str, float]]]:
        """phase -> target -> group -> median fraction of a core over the repetitions."""
        values: dict[tuple[str, str, str], list[float]] = {}
        for call in self.calls:
            for name, value in call["cpu"].items():
                values.setdefault((call["phase"], call["target"], name), []).append(value)
        out: dict[str, dict[str, dict[str, float]]] = {}
        for (phase, target, name), v in values.items():
            out.setdefault(phase, {}).setdefault(target, {})[name] = statistics.median(v)
        return out


class Medians:
    """Each metric's unit and direction, from regbench's `==` lines."""

    def __init__(self) -> None:
        self.metrics: dict[str, tuple[str, bool]] = {}

    def on_line(self, line: str) -> None:
        if m := MEDIAN_LINE.match(line):
            self.metrics[m[1]] = (m[2], m[3] == "higher")


def figure(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def summary(runs: dict[str, dict]) -> list[str]:
    """The table of both runs, one row per metric, with the targets against Distribution."""
    a_dist, b_dist = RUNS["vs-distribution"]
    a_emb, b_emb = RUNS["vs-embedded"]
    lines = [
        f"| metric | {a_dist} | {b_dist} | ratio | target | {a_emb} | {b_emb} | ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    metrics: dict[str, tuple[str, bool]] = {}
    for run in runs.values():
        metrics.update(run["metrics"])
    for metric, (unit, higher) in metrics.items():
        cells = [f"{metric} ({unit}{'' if higher else ', lower is better'})"]
        for name in RUNS:
            results = runs.get(name, {}).get("regbench", {}).get("results", {})
            va, vb = results.get("A", {}).get(metric), results.get("B", {}).get(metric)
            if not va or not vb:
                cells += ["", "", ""] + ([""] if name == "vs-distribution" else [])
                continue
            ma, mb = statistics.median(va), statistics.median(vb)
            ratio = ma / mb if mb else float("inf")
            cells += [figure(ma), figure(mb), f"{ratio:.2f}x"]
            if name == "vs-distribution":
                target = TARGETS.get(metric)
                verdict = "" if target is None else "met" if ratio >= target else "MISSED"
                cells.append(f">= {target}x: {verdict}" if target else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def cpu_lines(runs: dict[str, dict]) -> list[str]:
    lines = ["CPU while each phase ran, % of one core (median over the repetitions):"]
    for name, run in runs.items():
        for phase, targets in run["cpu"].items():
            for target, groups in sorted(targets.items()):
                label = RUNS[name][0 if target == "A" else 1]
                shown = ", ".join(
                    f"{group} {groups[group] * 100:.0f}%"
                    for group in SHOWN_GROUPS[name][target]
                    if group in groups
                )
                lines.append(f"  {name:<16} {phase:<16} {label:<18} {shown}")
    return lines


def parse_args(argv: list[str]) -> argparse.Namespace:
    server_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, server_args = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="regbench --quick (~10x smaller)")
    ap.add_argument(
        "--phases", default=DEFAULT_PHASES, help=f"regbench --phases (default {DEFAULT_PHASES})"
    )
    ap.add_argument("--repeat", type=int, help="regbench --repeat (compare default: 3)")
    ap.add_argument(
        "--json",
        type=Path,
        help="result file (default bench/results/scale-<time>.json; the log beside it)",
    )
    ap.add_argument(
        "--no-auth",
        action="store_true",
        help="Dockyard without logins (by default regbench logs in as its admin user)",
    )
    ap.add_argument(
        "--distribution-direct",
        action="store_true",
        help="Distribution without the nginx in front of it",
    )
    ap.add_argument(
        "--nginx-offload",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="as docs/deploy.md configures them, the nodes answer blob GETs with "
        "X-Accel-Redirect and their nginx fetches the bytes from the bucket (Distribution "
        "has no such thing); --no-nginx-offload: the nodes proxy the bytes",
    )
    ap.add_argument(
        "--pg-cost",
        nargs="?",
        type=Path,
        const=DEFAULT_PG_COST,
        metavar="SCRIPT",
        help="afterwards, the PostgreSQL CPU per GET measurement (default "
        f"{DEFAULT_PG_COST.relative_to(REPO)})",
    )
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    ap.add_argument("--regbench", type=Path, default=DEFAULT_REGBENCH)
    ap.add_argument("--start-timeout", type=float, default=60.0)
    a = ap.parse_args(argv)
    a.server_args = server_args
    a.reference_only = False  # read by compare.build_regbench_cmd
    return a


def run_pg_cost(a: argparse.Namespace, out_json: Path, out_log: Path) -> dict | None:
    """The PostgreSQL CPU per GET measurement, through its own script (see --pg-cost)."""
    path = out_json.with_name(out_json.stem + "-pg-cost.json")
    cmd = [sys.executable, "-u", str(a.pg_cost), "--json", str(path)]
    if a.quick:
        cmd.append("--quick")
    if run_regbench(cmd, out_log) != 0:
        log(f"{a.pg_cost.name} failed")
        return None
    return json.loads(path.read_text())


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if not a.regbench.is_file():
        sys.exit(f"scale: regbench not found at {a.regbench} (use --regbench PATH)")
    if not shutil.which(str(a.dockyard)):
        sys.exit(f"scale: {a.dockyard} not found: run `make install`")
    if a.pg_cost is not None and not a.pg_cost.is_file():
        sys.exit(f"scale: {a.pg_cost} not found (the PostgreSQL CPU per GET measurement)")
    ensure_apt_packages()
    phases = [p.strip() for p in a.phases.split(",") if p.strip()]

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    name = f"scale-{stamp}{'-quick' if a.quick else ''}.json"
    out_json = (a.json or REPO / "bench" / "results" / name).resolve()
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_log = out_json.with_suffix(".log")

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    on_sigint = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-scale-"))
    backends = ScaleOutBackends(a.dockyard)
    servers: list[Server] = []
    sampler: MemorySampler | None = None
    runs: dict[str, dict] = {}
    started = time.monotonic()
    rc = 1
    try:
        backends.start()
        args = [*DOCKYARD_DEFAULT_ARGS, *a.server_args, *(["--no-auth"] if a.no_auth else [])]
        ports: list[int] = []
        for _ in range(3):
            ports.append(free_port(set(ports)))
        port_nodes, port_distribution, port_embedded = ports
        offload = ["--nginx-offload", "/_blob/"] if a.nginx_offload else []
        nodes = dockyard_nodes(
            a.dockyard,
            tmp,
            port_nodes,
            [*args, *backends.dockyard_args(), *offload],
            backends,
            count=2,
        )
        redirect = "--s3-redirect" in a.server_args
        distribution = distribution_server(
            tmp, port_distribution, backends.distribution_storage(redirect=redirect)
        )
        [embedded] = dockyard_nodes(a.dockyard, tmp, port_embedded, args, None, name="embedded")
        servers = [*nodes, distribution, embedded]
        for s in servers:
            s.start()
            # The second node shares the first's secret key, made by its first start.
            s.wait_ready(a.start_timeout)
        backends.balance(nodes, offload=a.nginx_offload)
        distribution_url = (
            distribution.url if a.distribution_direct else backends.front(distribution)
        )
        groups = {s.name: s.pid for s in servers}
        groups["nginx"] = backends.nginx.proc.pid
        groups["postgresql"] = backends.postgres.proc.pid
        groups["seaweedfs"] = backends.seaweedfs.proc.pid
        if backends.fronts:
            groups["nginx-distribution"] = backends.fronts[0].proc.pid

        sampler = MemorySampler(servers)
        sampler.start()
        pairs = {
            "vs-distribution": (distribution, distribution_url),
            "vs-embedded": (embedded, embedded.url),
        }
        for run_name, (other, other_url) in pairs.items():
            log(f"{run_name}: {backends.balancer_url} (two nodes) against {other_url}")
            cpu, medians = PhaseCpu(groups, phases), Medians()

            def on_line(line: str, cpu: PhaseCpu = cpu, medians: Medians = medians) -> None:
                cpu.on_line(line)
                medians.on_line(line)

            raw = tmp / f"{run_name}.json"
            cmd = build_regbench_cmd(a, [nodes[0], other], [backends.balancer_url, other_url], raw)
            rc = run_regbench(cmd, out_log, on_line)
            runs[run_name] = {
                "regbench_exit": rc,
                "regbench": json.loads(raw.read_text()) if raw.exists() else None,
                "metrics": medians.metrics,
                "cpu": cpu.medians(),
                "cpu_calls": cpu.calls,
            }
            if rc != 0:
                break
        sampler.finish()
        table = [*summary(runs), "", *cpu_lines(runs)]
        table.append(
            "Scale-out: blob bytes "
            + ("fetched from the bucket by nginx" if a.nginx_offload else "proxied by the nodes")
        )
        table.append(
            "Distribution: "
            + ("direct" if a.distribution_direct else "behind its own nginx")
            + ", "
            + ("redirecting to S3" if redirect else "proxying from S3 (redirect disabled)")
        )
        table += [
            f"{s.name}: peak memory (process tree) PSS {sampler.peak[s.name]['pss'] / MIB:.0f} MiB"
            for s in servers
        ]
        print("\n".join(table), flush=True)
        with open(out_log, "a") as f:
            f.write("\n".join(table) + "\n")
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({str(e) or 'SIGINT'}): cleaning up")
        rc = 130
    except RuntimeError as e:
        log(f"FAILED: {e}")
        rc = 1
    finally:
        stop_servers(servers, sampler, rc)
        backends.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"stopped {', '.join(s.name for s in servers) or 'nothing'} and the backends")
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_signal)

    result = {
        "git": git_describe(),
        "dockyard_args": a.server_args,
        "quick": a.quick,
        "distribution_direct": a.distribution_direct,
        "elapsed_s": round(time.monotonic() - started, 1),
        "runs": runs,
        "peak_memory_bytes": sampler.peak if sampler else None,
    }
    if rc == 0 and a.pg_cost is not None:
        try:
            result["pg_cost"] = run_pg_cost(a, out_json, out_log)
        except (KeyboardInterrupt, Interrupted):
            rc = 130
        if result.get("pg_cost") is None:
            rc = rc or 1
    out_json.write_text(json.dumps(result, indent=1))
    log(f"results: {out_json} and {out_log.name}; exit {rc}, {result['elapsed_s']:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
