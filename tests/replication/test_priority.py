"""Replication's threads run at a lower CPU priority than the requests' (Linux: a
thread's own nice value), and never raise a priority."""

from __future__ import annotations

import os
import threading

from dockyard.replication.priority import NICENESS, low_priority_threads, lower_priority


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_the_threads_run_at_the_lower_priority_and_the_caller_keeps_its_own() -> None:
    before = _nice()
    with low_priority_threads(1, "test") as threads:
        assert threads.submit(_nice).result() == max(before, NICENESS)
        # A thread started from one of them inherits its priority (the sender's lanes).
        started: list[int] = []

        def start() -> None:
            thread = threading.Thread(target=lambda: started.append(_nice()))
            thread.start()
            thread.join()

        threads.submit(start).result()
        assert started == [max(before, NICENESS)]
    assert _nice() == before


def test_a_thread_already_lower_is_left_lower() -> None:
    def lowered_then_asked() -> int:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS + 5)
        lower_priority()
        return _nice()

    found: list[int] = []
    thread = threading.Thread(target=lambda: found.append(lowered_then_asked()))
    thread.start()
    thread.join()
    assert found == [max(_nice(), NICENESS + 5)]
