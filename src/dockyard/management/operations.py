"""Long-running operations (the management API's importImage): started at once, run in
the background by the process that accepted them, their state kept in the database so
a poll on any node can answer it.

A running operation's process writes a heartbeat every `HEARTBEAT_SECONDS`; one whose
heartbeat stops for `ABANDONED_AFTER` (its process was killed or stopped mid-way) is
reported failed, so no poller waits for ever. What a failure says (status, code,
message) is decided by the caller, which knows the wire shape; this module never does.
Its progress (an `OperationProgress` the work reports to) is written with the heartbeat,
at most every `PROGRESS_SECONDS` when it moved, and what the work returns once it
succeeded: a poll on any node shows either (`OperationState.details`). Finished
operations are forgotten a day after they started."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dockyard.common.clock import Clock
from dockyard.metadata.operations import FAILED, IN_PROGRESS, OperationWrites, operation
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

HEARTBEAT_SECONDS = 10.0
PROGRESS_SECONDS = 1.0
ABANDONED_AFTER = timedelta(seconds=60)
KEPT_FOR = timedelta(days=1)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Failure:
    """What a poll of a failed operation answers."""

    status: int
    code: str
    message: str


@dataclass(frozen=True)
class OperationState:
    status: str  # InProgress, Succeeded or Failed
    failure: Failure | None = None
    details: dict[str, Any] | None = None  # the progress, or what the work returned


class OperationProgress:
    """The bytes a running operation will copy and has copied (`mirroring.imports.Progress`),
    kept in memory by its process; the heartbeat writes them for the pollers."""

    def __init__(self) -> None:
        self.total = self.done = 0

    def planned(self, size: int) -> None:
        self.total += size

    def moved(self, size: int) -> None:
        self.done += size

    def details(self) -> dict[str, Any]:
        return {"bytesTotal": self.total, "bytesCopied": self.done}


ABANDONED = Failure(
    500,
    "OperationAbandoned",
    "the server process running this operation stopped before it finished; start it again",
)


class Operations:
    def __init__(
        self, meta: Metadata, clock: Clock, heartbeat_seconds: float = HEARTBEAT_SECONDS
    ) -> None:
        self._meta = meta
        self._clock = clock
        self._heartbeat = heartbeat_seconds
        self._running: set[asyncio.Task[None]] = set()

    def start(
        self,
        registry: RegistryRecord,
        kind: str,
        work: Coroutine[Any, Any, dict[str, Any] | None],
        describe: Callable[[Exception], Failure],
        progress: OperationProgress | None = None,
    ) -> str:
        """Record an operation of `registry` and run `work` in the background (called
        from the event loop); `describe` turns what `work` raises into its failure, what
        it returns is the succeeded operation's details; `progress` is what it reports
        while it runs. Returns the operation's id."""
        operation_id = str(uuid.uuid4())
        with self._meta.transaction() as tx:
            writes = OperationWrites(tx)
            writes.forget_before(tx.now - KEPT_FOR)
            writes.add(operation_id, registry.id, kind)
        task = asyncio.get_running_loop().create_task(
            self._run(operation_id, work, describe, progress)
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return operation_id

    def state(self, registry: RegistryRecord, operation_id: str) -> OperationState | None:
        """The operation's state now; None if `registry` has no such operation."""
        record = operation(self._meta, operation_id)
        if record is None or record.registry_id != registry.id:
            return None
        if record.status == IN_PROGRESS:
            if self._clock() - record.updated_at > ABANDONED_AFTER:
                return OperationState(FAILED, ABANDONED)
            return OperationState(IN_PROGRESS, details=record.details)
        if record.status == FAILED:
            assert record.error_status is not None and record.error_code is not None
            failure = Failure(record.error_status, record.error_code, record.error_message or "")
            return OperationState(FAILED, failure)
        return OperationState(record.status, details=record.details)

    async def _run(
        self,
        operation_id: str,
        work: Coroutine[Any, Any, dict[str, Any] | None],
        describe: Callable[[Exception], Failure],
        progress: OperationProgress | None,
    ) -> None:
        beat = asyncio.create_task(self._beat(operation_id, progress))
        failure = result = None
        try:
            result = await work
        except Exception as exc:
            failure = describe(exc)
        finally:
            beat.cancel()
        error = None if failure is None else (failure.status, failure.code, failure.message)
        await asyncio.to_thread(self._finish, operation_id, error, result)

    async def _beat(self, operation_id: str, progress: OperationProgress | None) -> None:
        """The heartbeat every `_heartbeat` seconds, and the progress as soon as it moved
        (looked at every `PROGRESS_SECONDS`)."""
        loop = asyncio.get_running_loop()
        written, last = None, loop.time()
        while True:
            await asyncio.sleep(min(self._heartbeat, PROGRESS_SECONDS))
            details = None if progress is None else progress.details()
            if details == written and loop.time() - last < self._heartbeat:
                continue
            try:
                await asyncio.to_thread(self._write_beat, operation_id, details)
            except Exception:
                log.warning("operation %s: heartbeat not written", operation_id, exc_info=True)
                continue
            written, last = details, loop.time()

    def _write_beat(self, operation_id: str, details: dict[str, Any] | None) -> None:
        with self._meta.transaction() as tx:
            OperationWrites(tx).beat(operation_id, details)

    def _finish(
        self,
        operation_id: str,
        error: tuple[int, str, str] | None,
        details: dict[str, Any] | None,
    ) -> None:
        with self._meta.transaction() as tx:
            OperationWrites(tx).finish(operation_id, error, details)
        if error is not None:
            log.info("operation %s failed: %s %s", operation_id, error[1], error[2])
