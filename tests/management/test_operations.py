"""Long-running operations (`management.operations`): run in the background, their end (or
their failure, as the caller describes it) recorded for any node's poll, and an
operation whose process stopped beating reported failed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING

from dockyard.common.errors import ManifestUnknown
from dockyard.management.operations import (
    ABANDONED,
    Failure,
    OperationProgress,
    Operations,
    OperationState,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

if TYPE_CHECKING:
    from fake_clock import FakeClock


def describe(exc: Exception) -> Failure:
    return Failure(404, "MANIFEST_UNKNOWN", str(exc))


def test_an_operation_ends_succeeded_or_failed_as_described(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    operations = Operations(meta, clock)

    async def scenario() -> tuple[OperationState | None, ...]:
        release = asyncio.Event()

        async def work() -> None:
            await release.wait()

        async def failing() -> None:
            raise ManifestUnknown("no app:v9")

        done = operations.start(registry, "importImage", work(), describe)
        failed = operations.start(registry, "importImage", failing(), describe)
        running = operations.state(registry, done)
        release.set()
        while operations._running:
            await asyncio.sleep(0.01)
        return running, operations.state(registry, done), operations.state(registry, failed)

    running, succeeded, failed = asyncio.run(scenario())
    assert running == OperationState("InProgress")
    assert succeeded == OperationState("Succeeded")
    assert failed == OperationState("Failed", Failure(404, "MANIFEST_UNKNOWN", "no app:v9"))
    assert operations.state(registry, "no-such-operation") is None


def test_an_operation_whose_heartbeat_stops_is_reported_failed(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    operations = Operations(meta, clock, heartbeat_seconds=0.01)

    async def scenario() -> str:
        stop = asyncio.Event()

        async def work() -> None:
            await stop.wait()

        operation_id = operations.start(registry, "importImage", work(), describe)
        clock.advance(timedelta(seconds=50))
        await asyncio.sleep(0.2)  # beats at the moved clock: still alive
        clock.advance(timedelta(seconds=50))
        assert operations.state(registry, operation_id) == OperationState("InProgress")
        for task in operations._running:
            task.cancel()  # the process stops: no more beats
        await asyncio.sleep(0.05)
        return operation_id

    operation_id = asyncio.run(scenario())
    clock.advance(timedelta(seconds=61))
    assert operations.state(registry, operation_id) == OperationState("Failed", ABANDONED)


def test_an_operation_shows_its_progress_while_it_runs_and_its_result_at_the_end(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    """What any node's poll shows: the bytes planned and copied so far (written with the
    heartbeat, at most every second), then what the work returned."""
    operations = Operations(meta, clock, heartbeat_seconds=0.01)

    async def scenario() -> tuple[OperationState | None, OperationState | None]:
        progress = OperationProgress()
        release = asyncio.Event()

        async def work() -> dict[str, object]:
            progress.planned(100)
            progress.moved(40)
            await release.wait()
            return {"digest": "sha256:" + "a" * 64, "bytesCopied": 40}

        operation_id = operations.start(registry, "importImage", work(), describe, progress)
        await asyncio.sleep(0.1)
        running = operations.state(registry, operation_id)
        release.set()
        while operations._running:
            await asyncio.sleep(0.01)
        return running, operations.state(registry, operation_id)

    running, done = asyncio.run(scenario())
    assert running == OperationState("InProgress", details={"bytesTotal": 100, "bytesCopied": 40})
    assert done == OperationState(
        "Succeeded", details={"digest": "sha256:" + "a" * 64, "bytesCopied": 40}
    )
