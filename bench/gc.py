#!/usr/bin/env python3
"""Garbage collection benchmark (issue 6): GC time and memory on a large registry, and
push throughput while GC runs against push throughput without it.

Starts `dockyard serve` (embedded default: SQLite + files, logins off with --no-auth,
background GC off with --no-gc so every run is this harness's) on a free loopback port
with a temporary data directory, then:

1. generates, through the HTTP API, IMAGES images (1 config + 4 layers each: 5 distinct
   small blobs, monolithic `POST ?digest=`, and one tagged OCI manifest) spread over
   REPOS repositories, with several connections; then deletes half of the manifests
   (DELETE by digest), so that their blobs become garbage;
2. runs `dockyard gc --grace 0 -o json` on the same data directory: wall time, peak RSS
   (the child's rusage), its report, the server's peak RSS meanwhile; then checks that
   exactly the kept images' blob files remain on disk, that a sample of kept images
   still pulls (manifest and every blob GET 200, right length) and that the deleted
   ones' manifests and blobs answer 404; then times an idle run (nothing to free);
3. measures regbench's push-small workload (4 KiB blobs in sets of 1 config + 9 layers
   and a manifest, 8 connections) in batches of --push-blobs, while one `dockyard gc`
   runs and then alone, alternated --repeat times: before each collection a share of the
   kept images is deleted; the batches that began and ended while it ran count (blobs/s
   over their timed windows, regbench's), against as many batches with no collection.
   These collections keep a grace of GRACE_DURING_PUSH seconds, not 0: a run started
   between a set's blob pushes and its manifest would rightly take its blobs, and the
   manifest PUT would then fail (as it would for any client pushing then).

    bench/gc.py [--scale 0.1] [--repeat 3] [--push-blobs 100] [--json OUT]

The server is stopped by PID and the data directory removed afterwards, also on failure,
Ctrl-C or SIGTERM. Raw results go to bench/results/gc-<time>.json. Run it with the
project's .venv python (`make bench-gc`); it imports bench/compare.py (servers, memory)
and ../shared/bench/regbench.py (HTTP client, push-small). Linux only (/proc, wait4).
"""

import argparse
import datetime
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import ClassVar

from compare import (
    DEFAULT_DOCKYARD,
    DEFAULT_REGBENCH,
    DOCKYARD_DEFAULT_ARGS,
    MIB,
    REPO,
    Interrupted,
    MemorySampler,
    Server,
    free_port,
    git_describe,
)

sys.path.insert(0, str(DEFAULT_REGBENCH.parent))
import regbench  # ../shared/bench/regbench.py, which compare.py runs

FULL_IMAGES = 20_000
LAYERS = 4
REPOS = 200
LAYER_SIZE = 1024
PREFIX = "gcbench"
GRACE_DURING_PUSH = 5


def log(msg: str) -> None:
    print(f"bench-gc: {msg}", flush=True)


@dataclass
class Image:
    repo: str
    tag: str
    digest: str
    blobs: list[tuple[str, int]]


def make_image(i: int, rnd: random.Random) -> tuple[Image, list[bytes], bytes]:
    """Image i: a config naming it and LAYERS random layers, all distinct."""
    config = regbench.make_config(f"{PREFIX}-{i}")
    layers = [rnd.randbytes(LAYER_SIZE) for _ in range(LAYERS)]
    blobs = [config, *layers]
    digests = [(regbench.sha256_digest(b), len(b)) for b in blobs]
    manifest = regbench.make_manifest(digests[0], digests[1:])
    image = Image(f"{PREFIX}/r{i % REPOS:04d}", f"i{i}", regbench.sha256_digest(manifest), digests)
    return image, blobs, manifest


def push_image(reg: regbench.Registry, image: Image, blobs: list[bytes], manifest: bytes):
    for (digest, _), data in zip(image.blobs, blobs, strict=True):
        reg.request(
            "POST",
            f"/v2/{image.repo}/blobs/uploads/?digest={digest}",
            body=data,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
    reg.put_manifest(image.repo, image.tag, manifest)


def parallel(conns: int, fn, items: list, what: str) -> float:
    """fn over items on `conns` threads, with progress lines; the wall time."""
    done = 0
    lock = threading.Lock()
    started = last = time.monotonic()

    def one(item):
        nonlocal done, last
        fn(item)
        with lock:
            done += 1
            now = time.monotonic()
            if now - last >= 15:
                last = now
                rate = done / (now - started)
                log(f"  {what}: {done:,}/{len(items):,} ({rate:,.0f}/s)")

    with ThreadPoolExecutor(conns) as pool:
        list(pool.map(one, items))
    return time.monotonic() - started


def generate(reg: regbench.Registry, n: int, conns: int) -> tuple[list[Image], float]:
    """Push n images; returns them and the wall time."""
    rnd = random.Random(6)
    seeds = [rnd.randrange(1 << 62) for _ in range(n)]
    images: list[Image | None] = [None] * n

    def push(i: int) -> None:
        image, blobs, manifest = make_image(i, random.Random(seeds[i]))
        push_image(reg, image, blobs, manifest)
        images[i] = image

    wall = parallel(conns, push, list(range(n)), "images pushed")
    return [image for image in images if image is not None], wall


def delete_images(reg: regbench.Registry, images: list[Image], conns: int) -> float:
    def delete(image: Image) -> None:
        reg.request("DELETE", f"/v2/{image.repo}/manifests/{image.digest}", expect=(202,))

    return parallel(conns, delete, images, "manifests deleted")


class GcRun:
    """One `dockyard gc --grace G -o json` process: wall time, peak RSS (rusage), CPU."""

    # Those running now, for the clean-up to kill (by PID), which also stops new ones.
    running: ClassVar[set["GcRun"]] = set()
    closed: ClassVar[bool] = False
    lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, dockyard: Path, data_dir: Path, grace: int = 0) -> None:
        self.argv = [str(dockyard), "gc", "--grace", f"{grace}s", "-o", "json"]
        self.argv += ["--data-dir", str(data_dir)]
        self.proc: subprocess.Popen | None = None

    def run(self) -> dict:
        start = time.monotonic()
        with GcRun.lock:
            if GcRun.closed:
                raise RuntimeError("interrupted")
            self.proc = subprocess.Popen(
                self.argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            GcRun.running.add(self)
        _, status, usage = os.wait4(self.proc.pid, 0)
        end = time.monotonic()
        with GcRun.lock:
            GcRun.running.discard(self)
            self.proc.returncode = os.waitstatus_to_exitcode(status)
        assert self.proc.stdout is not None
        out = self.proc.stdout.read().decode(errors="replace")
        if self.proc.returncode != 0:
            raise RuntimeError(f"dockyard gc exited {self.proc.returncode}: {out[-2000:]}")
        return {
            "start": start,
            "end": end,
            "wall_s": end - start,
            "peak_rss_bytes": usage.ru_maxrss * 1024,
            "cpu_s": usage.ru_utime + usage.ru_stime,
            "report": json.loads(out.strip().splitlines()[-1]),
        }

    @classmethod
    def kill_all(cls) -> None:
        """Kill the running collections (not yet reaped: their PIDs are theirs) and
        start no more."""
        with cls.lock:
            cls.closed = True
            for gc_run in cls.running:
                assert gc_run.proc is not None
                gc_run.proc.kill()


class GcThread(threading.Thread):
    """One `dockyard gc` in the background, while the pushes go on."""

    def __init__(self, dockyard: Path, data_dir: Path) -> None:
        super().__init__(daemon=True)
        self.gc = GcRun(dockyard, data_dir, GRACE_DURING_PUSH)
        self.result: dict = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.gc.run()
        except BaseException as e:  # raised again by the caller
            self.error = e


def blob_files(data_dir: Path) -> int:
    return sum(1 for _ in data_dir.glob("blobs/*/blobs/sha256/*/*"))


def verify(reg: regbench.Registry, kept: list[Image], deleted: list[Image], n: int, conns: int):
    """A sample of kept images pulls whole; a sample of deleted ones is gone."""
    rnd = random.Random(7)
    sample = [(image, True) for image in rnd.sample(kept, min(n, len(kept)))]
    sample += [(image, False) for image in rnd.sample(deleted, min(n, len(deleted)))]

    def check(item: tuple[Image, bool]) -> None:
        image, alive = item
        want = 200 if alive else 404
        reg.request("GET", f"/v2/{image.repo}/manifests/{image.digest}", expect=(want,))
        for digest, size in image.blobs:
            r = reg.request("GET", f"/v2/{image.repo}/blobs/{digest}", expect=(want,))
            if alive and hashlib.sha256(r.body).hexdigest() != digest.split(":")[1]:
                raise RuntimeError(f"{image.repo}@{digest}: wrong bytes ({len(r.body)} of {size})")

    parallel(conns, check, sample, "images verified")
    return len(sample)


def push_small(reg: regbench.Registry, pid: int, blobs: int) -> tuple[float, float]:
    """regbench's push-small phase with `blobs` blobs: the window it timed."""
    target = SimpleNamespace(reg=reg, pid=pid)
    settings = dict(regbench.FULL, small_n=blobs)
    ((_, value, _, _, _),) = regbench.phase_push_small(
        target, settings, SimpleNamespace(prefix=PREFIX)
    )
    end = time.monotonic()
    return end - blobs / value, end


def push_batches(reg: regbench.Registry, pid: int, blobs: int, more) -> list[tuple]:
    """push_small again and again while more(batches so far) says so: their windows."""
    windows: list[tuple] = []
    while more(len(windows)):
        windows.append(push_small(reg, pid, blobs))
    return windows


def rate(windows: list[tuple], blobs: int) -> float:
    """Blobs/s over the batches' timed windows."""
    return len(windows) * blobs / sum(end - start for start, end in windows)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help=f"fraction of the full registry ({FULL_IMAGES:,} images = "
        f"{FULL_IMAGES * (LAYERS + 1):,} blobs); default 1",
    )
    ap.add_argument("--conns", type=int, default=8, help="client connections (default 8)")
    ap.add_argument("--repeat", type=int, default=3, help="push runs of each kind (default 3)")
    ap.add_argument(
        "--push-blobs", type=int, default=100, help="blobs per push-small batch (default 100)"
    )
    ap.add_argument(
        "--verify-sample",
        type=int,
        default=1000,
        help="kept and deleted images pulled after the collection (default 1000 each)",
    )
    ap.add_argument("--json", type=Path, help="result file (default bench/results/gc-<time>.json)")
    ap.add_argument("--dockyard", type=Path, default=DEFAULT_DOCKYARD)
    ap.add_argument("--start-timeout", type=float, default=60.0)
    return ap.parse_args(argv)


def run(a: argparse.Namespace, tmp: Path, results: dict) -> None:
    data_dir = tmp / "data"
    port = free_port(set())
    url = f"http://127.0.0.1:{port}"
    argv = [str(a.dockyard), "serve", "--listen", f"127.0.0.1:{port}"]
    argv += ["--data-dir", str(data_dir), *DOCKYARD_DEFAULT_ARGS, "--no-auth", "--no-gc"]
    server = Server("dockyard", argv, f"{url}/healthz", tmp / "dockyard.log")
    results["server_argv"] = argv[1:]
    try:
        server.start()
        server.wait_ready(a.start_timeout)
        reg = regbench.Registry(url)
        sampler = MemorySampler([server])
        sampler.start()

        n = round(FULL_IMAGES * a.scale)
        log(f"generating {n:,} images ({n * (LAYERS + 1):,} blobs) in {REPOS} repositories")
        images, wall = generate(reg, n, a.conns)
        results["generate"] = {"images": n, "blobs": n * (LAYERS + 1), "wall_s": wall}
        log(f"generated in {wall:.0f} s ({n * (LAYERS + 1) / wall:,.0f} blobs/s)")
        kept, deleted = images[0::2], images[1::2]
        wall = delete_images(reg, deleted, a.conns)
        results["delete"] = {"manifests": len(deleted), "wall_s": wall}
        log(f"deleted {len(deleted):,} manifests in {wall:.0f} s")
        sampler.finish()
        results["server_peak_generate"] = sampler.peak["dockyard"]

        sampler = MemorySampler([server], interval=0.2)
        sampler.start()
        gc = GcRun(a.dockyard, data_dir).run()
        sampler.finish()
        gc["server_peak"] = sampler.peak["dockyard"]
        results["gc"] = gc
        freed = gc["report"]["blobs"]
        log(
            f"gc: {gc['wall_s']:.1f} s wall, {gc['cpu_s']:.1f} s CPU, freed {gc['report']}; "
            f"{freed / gc['wall_s']:,.0f} blobs/s; peak RSS gc "
            f"{gc['peak_rss_bytes'] / MIB:.0f} MiB, server {gc['server_peak']['rss'] / MIB:.0f} "
            f"MiB (PSS {gc['server_peak']['pss'] / MIB:.0f} MiB)"
        )
        expected = len(deleted) * (LAYERS + 1)
        if freed != expected:
            raise RuntimeError(f"gc freed {freed} blobs, expected {expected}")
        on_disk = blob_files(data_dir)
        if on_disk != len(kept) * (LAYERS + 1):
            raise RuntimeError(f"{on_disk} blob files left, expected {len(kept) * (LAYERS + 1)}")
        checked = verify(reg, kept, deleted, a.verify_sample, a.conns)
        results["verified"] = {"blob_files": on_disk, "images_pulled": checked}
        log(f"verified: {on_disk:,} blob files left, {checked:,} images pulled or gone")
        idle = GcRun(a.dockyard, data_dir).run()
        results["gc_idle"] = idle
        log(f"idle gc (nothing to free): {idle['wall_s']:.1f} s, {idle['cpu_s']:.1f} s CPU")

        results["push"] = push_with_and_without_gc(a, server, reg, data_dir, kept)
    finally:
        GcRun.kill_all()
        server.stop()


def push_with_and_without_gc(a, server, reg, data_dir, kept) -> dict:
    pool = list(kept)
    random.Random(8).shuffle(pool)
    during: list[dict] = []
    alone: list[dict] = []
    sampler = MemorySampler([server], interval=0.2)
    sampler.start()
    for rep in range(a.repeat):
        # A share of the kept images becomes garbage, then one collection runs while
        # batches of pushes go on; the batches that began and ended while it ran count.
        share = len(pool) // (a.repeat - rep)
        images, pool = pool[:share], pool[share:]
        delete_images(reg, images, a.conns)
        time.sleep(GRACE_DURING_PUSH + 0.5)  # their links are past the grace
        thread = GcThread(a.dockyard, data_dir)
        thread.start()
        windows = push_batches(reg, server.pid, a.push_blobs, lambda _, gc=thread: gc.is_alive())
        thread.join()
        if thread.error is not None:
            raise RuntimeError(f"concurrent gc failed: {thread.error}")
        gc = thread.result
        inside = [w for w in windows if w[0] >= gc["start"] and w[1] <= gc["end"]]
        if len(inside) < 2:
            raise RuntimeError(f"gc ran {gc['wall_s']:.1f} s: too short for --push-blobs batches")
        freed = gc["report"]["blobs"]
        if freed != len(images) * (LAYERS + 1):
            raise RuntimeError(f"gc freed {freed} blobs, expected {len(images) * (LAYERS + 1)}")
        during.append(
            {
                "blobs_per_s": rate(inside, a.push_blobs),
                "batches": len(inside),
                "gc": {k: v for k, v in gc.items() if k not in ("start", "end")},
            }
        )
        log(
            f"push during gc #{rep + 1}: {during[-1]['blobs_per_s']:,.0f} blobs/s over "
            f"{len(inside)} batches of {a.push_blobs}; the gc ran {gc['wall_s']:.1f} s "
            f"({gc['cpu_s']:.1f} s CPU), freed {freed:,} blobs"
        )
        batches = len(inside)
        windows = push_batches(reg, server.pid, a.push_blobs, lambda n, k=batches: n < k)
        alone.append({"blobs_per_s": rate(windows, a.push_blobs), "batches": len(windows)})
        log(f"push alone #{rep + 1}: {alone[-1]['blobs_per_s']:,.0f} blobs/s")
    sampler.finish()
    alone_median = statistics.median(r["blobs_per_s"] for r in alone)
    during_median = statistics.median(r["blobs_per_s"] for r in during)
    ratio = during_median / alone_median
    log(
        f"push-small medians: alone {alone_median:,.0f} blobs/s, during gc "
        f"{during_median:,.0f} blobs/s: ratio {ratio:.2f}x (target >= 0.8x)"
    )
    return {
        "alone": alone,
        "during_gc": during,
        "alone_median": alone_median,
        "during_median": during_median,
        "ratio": ratio,
        "server_peak": sampler.peak["dockyard"],
    }


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    if not os.access(a.dockyard, os.X_OK):
        sys.exit(f"bench-gc: {a.dockyard} not found: run `make install`")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_json = (a.json or REPO / "bench" / "results" / f"gc-{stamp}.json").resolve()
    out_json.parent.mkdir(parents=True, exist_ok=True)

    def on_signal(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-gc-"))
    results: dict = {"git": git_describe(), "args": {k: str(v) for k, v in vars(a).items()}}
    results["loadavg_start"] = os.getloadavg()  # the machine may be shared: say how much
    started = time.monotonic()
    rc = 1
    try:
        run(a, tmp, results)
        rc = 0
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({e or 'SIGINT'}): cleaning up")
        rc = 130
    except (RuntimeError, regbench.BenchError) as e:
        log(f"FAILED: {e}")
        if (tail := (tmp / "dockyard.log")).exists():
            print(tail.read_text(errors="replace")[-3000:], flush=True)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        shutil.rmtree(tmp, ignore_errors=True)
        results["elapsed_s"] = time.monotonic() - started
        results["loadavg_end"] = os.getloadavg()
        results["exit"] = rc
        out_json.write_text(json.dumps(results, indent=1, default=str))
        log(f"removed {tmp}; results: {out_json}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
