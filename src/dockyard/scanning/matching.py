"""The CPU-bound half of a scan, comparing each package's version with the ranges of the
advisories that name it, run in a process of its own. A scan runs in the background work,
which the embedded default keeps inside every server process: done in a thread there,
thousands of comparisons in `univers` hold the interpreter lock, and the pushes and pulls
that process serves meanwhile wait for it. In a child process at a lower priority
(`nice` 10), a scan takes only the CPU that requests leave.

The child comes from a fork server (a fresh interpreter that imported only this module),
never from forking the server process itself, whose other threads may hold locks. If the
child cannot be started or dies, the comparison runs in the calling thread: a scan is
slower for the process's requests then, never lost."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import orjson

from dockyard.metadata.scanning import AffectedRow
from dockyard.sbom.packages import Package
from dockyard.scanning.findings import Finding
from dockyard.scanning.ranges import affects
from dockyard.scanning.severity import Severity

log = logging.getLogger(__name__)

NICE = 10  # how much lower the child's priority is than the server's

Wanted = dict[tuple[str, str], list[Package]]

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None


def findings_of(wanted: Wanted, entries: Sequence[AffectedRow]) -> list[Finding]:
    """The findings of the packages `wanted` holds (by the (ecosystem, name) pairs an
    advisory may name them by) among `entries`: one per advisory, package and place."""
    findings: dict[tuple[str, str, str], Finding] = {}
    for entry in entries:
        ranges, versions = orjson.loads(entry.ranges), orjson.loads(entry.versions)
        for package in wanted.get((entry.ecosystem, entry.name), ()):
            key = (entry.advisory, package.name, package.location)
            if key in findings:
                continue
            hit = affects(entry.ecosystem, package.version, ranges, versions)
            if hit is None:
                continue
            findings[key] = Finding(
                advisory=entry.advisory,
                aliases=entry.aliases,
                ecosystem=package.ecosystem,
                package=package.name,
                installed=package.version,
                fixed=hit.fixed,
                severity=Severity.named(entry.severity),
                score=entry.score,
                purl=package.purl,
                location=package.location,
                summary=entry.summary,
            )
    return list(findings.values())


def match_apart(wanted: Wanted, entries: Sequence[AffectedRow]) -> list[Finding]:
    """`findings_of` in the scans' child process; in this thread if it cannot run."""
    global _pool
    try:
        with _lock:
            if _pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload([__name__])
                _pool = ProcessPoolExecutor(1, mp_context=context, initializer=_lower_priority)
            pool = _pool
        return pool.submit(findings_of, wanted, list(entries)).result()
    except (BrokenProcessPool, OSError, RuntimeError) as exc:
        log.warning("scan matched in the server process: %s", exc)
        with _lock:
            if _pool is not None:
                _pool.shutdown(wait=False, cancel_futures=True)
                _pool = None
        return findings_of(wanted, entries)


def _lower_priority() -> None:
    os.nice(NICE)


def stop() -> None:
    """End the child (the background work stops): a process that exits with it still
    running would wait for it at exit, and a server would not stop."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        for process in list((pool._processes or {}).values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)


async def stop_with_the_background() -> None:
    """A job of the background work that only waits, and ends the child when the work
    is cancelled (the process stops)."""
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.to_thread(stop)
