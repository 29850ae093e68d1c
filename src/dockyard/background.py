"""The background work of a deployment: sweeping expired upload sessions, collecting
garbage (`gc.enabled`), draining the outbox for each feature's consumers (the audit
log's), and each feature's jobs (`dockyard.features`: webhook delivery, the image
lifecycle, audit log pruning). `dockyard worker` runs it in a process of its own; the
embedded default runs it inside each server process (`worker.in_process`). Either way
several copies may run at once: sweeps and collections are idempotent and outbox claims
never overlap."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import timedelta

from dockyard.events import Consumer
from dockyard.feature import Feature, RequestRecorder
from dockyard.services import Services

log = logging.getLogger("dockyard")

OUTBOX_BATCH = 100


async def sweep_uploads(services: Services) -> None:
    settings = services.settings.uploads
    while True:
        await asyncio.sleep(settings.sweep_seconds)
        try:
            removed = await asyncio.to_thread(
                services.uploads.expire, timedelta(seconds=settings.expiry_seconds)
            )
            if removed:
                log.info("expired uploads removed", extra={"fields": {"count": removed}})
        except Exception:
            log.exception("upload sweep failed")


async def collect_garbage(services: Services) -> None:
    """A garbage collection run every `gc.interval_seconds`, one log line each with what
    it freed. Runs from several processes at once are safe (each batch is one write
    transaction), only wasteful."""
    settings = services.settings
    while True:
        await asyncio.sleep(settings.gc.interval_seconds)
        try:
            report = await asyncio.to_thread(
                services.garbage.collect,
                timedelta(seconds=settings.gc.grace_seconds),
                timedelta(seconds=settings.uploads.expiry_seconds),
            )
            log.info("garbage collected", extra={"fields": asdict(report)})
        except Exception:
            log.exception("garbage collection failed")


async def drain_outbox(services: Services, consumers: Sequence[Consumer]) -> None:
    """Deliver events to each consumer, a batch at a time; sleep when no consumer had
    anything due (or the database could not be reached): `outbox.poll_seconds`, longer
    while idle where new events are announced (`events.wakeups`)."""
    idle = services.outbox.wakeups.idle()
    while True:
        busy = False
        for consumer in consumers:
            try:
                claimed = await asyncio.to_thread(services.outbox.drain, consumer, OUTBOX_BATCH)
                busy = busy or claimed > 0
            except Exception:
                log.exception("outbox drain failed", extra={"fields": {"consumer": consumer.name}})
        if busy:
            idle.worked()
        else:
            await idle.sleep()


async def flush_request_records(
    services: Services, publish: Callable[[], None], recorders: Sequence[RequestRecorder]
) -> None:
    """`publish` this process's request metrics and write what the features' recorders
    buffered (the audit log's pulls), every `[audit] flush_seconds`. Runs in every server
    process, whatever `worker.in_process` says: the buffers are the process's own. The
    app's shutdown writes what is left (`write_request_records`)."""
    while True:
        await asyncio.sleep(services.settings.audit.flush_seconds)
        publish()
        await write_request_records(recorders)


async def write_request_records(recorders: Sequence[RequestRecorder]) -> None:
    """Each recorder's `flush`, in a thread; one that fails is logged, the others run."""
    for recorder in recorders:
        try:
            await asyncio.to_thread(recorder.flush)
        except Exception:
            log.exception(
                "request records write failed",
                extra={"fields": {"recorder": type(recorder).__name__}},
            )


def feature_consumers(services: Services, features: Sequence[Feature]) -> list[Consumer]:
    """The outbox consumers the background work drains: each feature's."""
    return [c for feature in features for c in feature.consumers(services)]


def background_work(services: Services, features: Sequence[Feature]) -> dict[str, Awaitable[None]]:
    """What the background work runs, by name, for `run_background`: the listener of the
    outbox's announcements where the database makes them (PostgreSQL), the kernel's
    loops (the upload sweep, garbage collection unless `gc.enabled` is off, the outbox
    with its consumers named), then each feature's jobs as `feature: job`. `dockyard
    worker` logs the names, so an operator sees what the process does."""
    consumers = feature_consumers(services, features)
    work: dict[str, Awaitable[None]] = {}
    if services.outbox.wakeups.announced:
        work["outbox announcements"] = services.outbox.wakeups.run()
    work["upload sweep"] = sweep_uploads(services)
    if services.settings.gc.enabled:
        work["garbage collection"] = collect_garbage(services)
    work[f"outbox: {', '.join(c.name for c in consumers)}"] = drain_outbox(services, consumers)
    for feature in features:
        for job in feature.jobs(services):
            work[f"{feature.name}: {getattr(job, '__qualname__', type(job).__name__)}"] = job
    return work


async def run_background(work: Mapping[str, Awaitable[None]]) -> None:
    await asyncio.gather(*work.values())
