"""Tasks' timer triggers: every occurrence of an enabled timer's cron schedule (UTC)
queues one run of its task, with `timerTrigger` saying which timer and occurrence.
Several workers may look at once: each occurrence is claimed by moving the timer on
first, so one of them queues it. An occurrence missed while no worker ran is run once,
late, not once per occurrence missed."""

from __future__ import annotations

import asyncio
import logging

from dockyard.common.clock import Clock
from dockyard.common.errors import RequestInvalid
from dockyard.lifecycle.purge import next_run
from dockyard.metadata.store import Metadata
from dockyard.metadata.task_definitions import TaskWrites, due_timers
from dockyard.metadata.tasks import RunRecord
from dockyard.tasks.runs import Runs

CHECK_SECONDS = 15.0  # a cron schedule names minutes: a quarter of one late at most

log = logging.getLogger(__name__)


class TaskTimers:
    def __init__(self, meta: Metadata, runs: Runs, clock: Clock) -> None:
        self._meta = meta
        self._runs = runs
        self._clock = clock

    def run_due(self) -> list[RunRecord]:
        """Queue a run for each timer due now (in every registry); the runs queued. A
        timer whose task cannot run (disabled, or a context not supported yet) moves on
        without one."""
        now = self._clock()
        registries = {record.id: record for record in self._meta.registries()}
        queued = []
        for timer in due_timers(self._meta, now):
            with self._meta.transaction() as tx:
                if not TaskWrites(tx).claim_timer(timer, next_run(timer.schedule, now)):
                    continue
            occurrence = timer.next_run_at.isoformat().replace("+00:00", "Z")
            trigger = {
                "timerTrigger": {"timerTriggerName": timer.name, "scheduleOccurrence": occurrence}
            }
            try:
                queued.append(
                    self._runs.schedule_task(
                        registries[timer.registry_id], timer.task_name, {}, trigger
                    )
                )
            except RequestInvalid as exc:
                log.warning(
                    "timer trigger queued no run",
                    extra={"fields": {"task": timer.task_name, "reason": exc.message}},
                )
        return queued

    async def run(self) -> None:
        """`run_due` every `CHECK_SECONDS` until cancelled."""
        while True:
            try:
                await asyncio.to_thread(self.run_due)
            except Exception:
                log.exception("task timers failed")
            await asyncio.sleep(CHECK_SECONDS)
