#!/usr/bin/env python3
"""Encryption at rest against the same server without it, in one run (issue 16).

Starts two embedded Dockyard servers (SQLite and files) on free loopback ports, with
the same arguments; on the first, the default registry's encryption is turned on with a
local key file before any blob arrives. Runs ../shared/bench/regbench.py in compare mode
(A = encrypted, B = plain) over push-large, pull-large and pull-concurrent (issue 16's
target: >= 0.9x each), prints the CPU each server used per phase, then measures online
encryption: a third server receives `--convert-mib` MiB of 16 MiB layers in plaintext,
encryption is turned on, and the time from the background round's first encrypted blob
until it has encrypted every one of them (no plaintext blob file left) is printed, with
the wait before it began (the job's `SETTLED_SECONDS`) and the pulls served meanwhile.

    bench/encryption.py [--quick] [--repeat N] [--convert-mib MIB] [--json OUT]

Everything started is stopped by its PID and the temporary directory removed, also on
failure or Ctrl-C. Run with the project's .venv python (`make bench-encryption`).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from compare import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    DEFAULT_DOCKYARD,
    DEFAULT_REGBENCH,
    DOCKYARD_DEFAULT_ARGS,
    REPO,
    Interrupted,
    Server,
    dockyard_nodes,
    free_port,
    log,
    run_regbench,
    stop_servers,
)
from scale import PhaseCpu

PHASES = "push-large,pull-large,pull-concurrent"
LAYER = 16 << 20
# Turns on the default registry's encryption on a running server's database, as the
# management API would: the server's stores notice within their 5 s refresh.
ENABLE = """
import sys
from pathlib import Path
from dockyard.cli.local import local_services
with local_services(None, Path(sys.argv[1]), None) as services:
    services.registry_keys.enable(services.registries.for_host(""), "local:kek", None)
"""


def enable_encryption(dockyard: Path, data_dir: Path) -> None:
    subprocess.run([str(dockyard), "key", "create", "kek", "--data-dir", str(data_dir)], check=True)
    subprocess.run([sys.executable, "-c", ENABLE, str(data_dir)], check=True)


def plaintext_blobs(data_dir: Path) -> int:
    """Blob files of the default registry still stored in plaintext (sha256/, not the
    encrypted copies' sha256.aes256gcm/)."""
    return sum(1 for path in data_dir.glob("blobs/*/blobs/sha256/*/*") if path.is_file())


def encrypted_blobs(data_dir: Path) -> int:
    return sum(1 for path in data_dir.glob("blobs/*/blobs/sha256.aes256gcm/*/*") if path.is_file())


def push_layers(url: str, count: int) -> list[str]:
    digests = []
    with httpx.Client(base_url=url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=120) as http:
        for _ in range(count):
            data = os.urandom(LAYER)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            done = http.post(f"/v2/bench/convert/blobs/uploads/?digest={digest}", content=data)
            if done.status_code != 201:
                raise RuntimeError(f"push failed: {done.status_code} {done.text[:200]}")
            digests.append(digest)
    return digests


def online_encryption(a: argparse.Namespace, tmp: Path, servers: list[Server]) -> dict:
    """Push `convert_mib` MiB, turn encryption on, time the background conversion while
    a client pulls the layers in a loop."""
    [server] = dockyard_nodes(
        a.dockyard, tmp, free_port(set()), list(DOCKYARD_DEFAULT_ARGS), None, name="convert"
    )
    server.env["DOCKYARD_ENCRYPTION__INTERVAL_SECONDS"] = "1"
    servers.append(server)
    server.start()
    server.wait_ready(60)
    data_dir = tmp / "convert"
    digests = push_layers(server.url, max(1, a.convert_mib * (1 << 20) // LAYER))
    stored = plaintext_blobs(data_dir)
    pulled, failed, stop = [0], [], threading.Event()

    def pull() -> None:
        with httpx.Client(
            base_url=server.url, auth=(ADMIN_USER, ADMIN_PASSWORD), timeout=120
        ) as http:
            while not stop.is_set():
                for digest in digests:
                    answer = http.get(f"/v2/bench/convert/blobs/{digest}")
                    if answer.status_code != 200 or len(answer.content) != LAYER:
                        failed.append(f"{answer.status_code} {answer.text[:200]}")
                        return
                    pulled[0] += 1
                    if stop.is_set():
                        return

    puller = threading.Thread(target=pull, daemon=True)
    puller.start()
    enable_encryption(a.dockyard, data_dir)
    enabled = time.monotonic()
    while not encrypted_blobs(data_dir):  # the round waits for every process's stores
        time.sleep(0.05)
    started = time.monotonic()
    while plaintext_blobs(data_dir):
        if time.monotonic() - started > 600:
            raise RuntimeError("online encryption did not finish within 600 s")
        time.sleep(0.2)
    seconds = time.monotonic() - started
    stop.set()
    puller.join(120)
    if failed:
        raise RuntimeError(f"a pull failed during conversion: {failed[0]}")
    mib = len(digests) * LAYER / (1 << 20)
    waited = started - enabled
    log(
        f"online encryption: {len(digests)} layers ({mib:.0f} MiB, {stored} blob files) "
        f"encrypted in {seconds:.1f} s ({mib / seconds:.0f} MiB/s), begun {waited:.1f} s "
        f"after encryption was turned on, while {pulled[0]} pulls of them were served"
    )
    return {
        "mib": mib,
        "seconds": round(seconds, 2),
        "begun_after_seconds": round(waited, 2),
        "pulls_meanwhile": pulled[0],
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="regbench --quick (~10x smaller)")
    ap.add_argument("--repeat", type=int, default=3, help="regbench --repeat (default 3)")
    ap.add_argument("--phases", default=PHASES, help=f"regbench --phases (default {PHASES})")
    ap.add_argument("--convert-mib", type=int, default=1024, help="online encryption's size")
    ap.add_argument("--json", type=Path, help="default bench/results/encryption-<time>.json")
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    ap.add_argument("--regbench", type=Path, default=DEFAULT_REGBENCH)
    a = ap.parse_args(argv)
    if a.quick:
        a.convert_mib = min(a.convert_mib, 128)

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_json = (a.json or REPO / "bench" / "results" / f"encryption-{stamp}.json").resolve()
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_log = out_json.with_suffix(".log")

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-encryption-"))
    servers: list[Server] = []
    rc = 1
    try:
        ports: list[int] = []
        for _ in range(2):
            ports.append(free_port(set(ports)))
        [encrypted] = dockyard_nodes(
            a.dockyard, tmp, ports[0], list(DOCKYARD_DEFAULT_ARGS), None, name="encrypted"
        )
        [plain] = dockyard_nodes(
            a.dockyard, tmp, ports[1], list(DOCKYARD_DEFAULT_ARGS), None, name="plain"
        )
        servers += [encrypted, plain]
        for server in servers:
            server.start()
            server.wait_ready(60)
        enable_encryption(a.dockyard, tmp / "encrypted")
        time.sleep(6)  # the server's stores notice within 5 s
        cpu = PhaseCpu({s.name: s.pid for s in servers}, a.phases.split(","))
        raw = tmp / "regbench.json"
        cmd = [sys.executable, "-u", str(a.regbench), "--compare", encrypted.url, plain.url]
        cmd += ["--pids", str(encrypted.pid), str(plain.pid), "--json", str(raw)]
        cmd += ["--phases", a.phases, "--repeat", str(a.repeat)]
        cmd += ["--user", ADMIN_USER, "--password", ADMIN_PASSWORD]
        cmd += ["--quick"] if a.quick else []
        rc = run_regbench(cmd, out_log, cpu.on_line)
        leftover = plaintext_blobs(tmp / "encrypted")
        if rc == 0 and leftover:
            raise RuntimeError(f"{leftover} blobs of the encrypted server are in plaintext")
        results = {
            "regbench": json.loads(raw.read_text()) if raw.exists() else None,
            "cpu": cpu.medians(),
        }
        if rc == 0:
            results["online_encryption"] = online_encryption(a, tmp, servers)
        for phase, targets in cpu.medians().items():
            for target, groups in targets.items():
                shares = ", ".join(f"{name} {share:.0%}" for name, share in groups.items())
                log(f"CPU while {phase} ran against {target}: {shares}")
        out_json.write_text(json.dumps(results, indent=1))
        log(f"results: {out_json} and {out_log.name}")
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({e or 'SIGINT'}): cleaning up")
        rc = 130
    except (RuntimeError, subprocess.CalledProcessError) as e:
        log(f"FAILED: {e}")
        rc = 1
    finally:
        stop_servers(servers, None, rc)
        shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
