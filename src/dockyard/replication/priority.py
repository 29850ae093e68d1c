"""Replication's work at a lower CPU priority than the region's own requests: sending a
region's changes (the queues' threads, `queues`) and applying a peer's bundle
(`applier`) run in threads whose nice value is `NICENESS`, so that when CPU is short
the pushes and pulls of the region's clients come first, and replication takes what
they leave (it catches up as soon as they pause). Only CPU is yielded: the work itself
is unchanged, and a region whose CPU is idle replicates as fast as before.

On Linux a thread's nice value is its own (`setpriority` on its thread id), and threads
it starts inherit it (the sender's lanes); elsewhere the threads keep the process's."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

NICENESS = 10


def lower_priority() -> None:
    """Lower the calling thread's CPU priority to `NICENESS` (never raise it)."""
    with suppress(OSError, AttributeError):
        thread = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, thread)
        if current < NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, NICENESS)


def low_priority_threads(workers: int, name: str) -> ThreadPoolExecutor:
    """An executor whose threads run at `NICENESS`."""
    return ThreadPoolExecutor(workers, thread_name_prefix=name, initializer=lower_priority)
