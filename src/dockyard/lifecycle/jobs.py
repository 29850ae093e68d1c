"""The image lifecycle's background job: each registry's retention policy and recycle
bin expiry, and the purge schedules that are due, every `lifecycle.interval_seconds`.
Several processes may run it at once: every delete re-checks, in its transaction, that
it is still due."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.services import Services

log = logging.getLogger("dockyard")


def apply_lifecycle_once(services: Services) -> None:
    """Each registry's retention policy (a no-op where it is off) and recycle bin
    expiry, then the purge schedules that are due; one log line per registry where
    retention deleted something or met a lock, or the bin expired something, and per
    scheduled purge run."""
    for registry in services.meta.registries():
        expired = services.soft_delete.expire(registry)
        if expired:
            log.info(
                "soft-deleted items expired",
                extra={"fields": {"registry": registry.name, "count": expired}},
            )
        report = services.retention.apply(registry)
        if report.deleted or report.locked:
            log.info(
                "retention policy applied",
                extra={
                    "fields": {
                        "registry": registry.name,
                        "deleted": len(report.deleted),
                        "locked": len(report.locked),
                    }
                },
            )
    for registry, schedule, purged in services.purge_schedules.run_due():
        log.info(
            "scheduled purge ran",
            extra={
                "fields": {
                    "registry": registry.name,
                    "schedule": schedule.name,
                    "deleted": len(purged.deleted),
                    "locked": len(purged.locked),
                }
            },
        )


async def apply_lifecycle(services: Services) -> None:
    """`apply_lifecycle_once` every `lifecycle.interval_seconds`. Several processes may
    run it at once: every delete re-checks, in its transaction, that it is still due."""
    while True:
        await asyncio.sleep(services.settings.lifecycle.interval_seconds)
        try:
            await asyncio.to_thread(apply_lifecycle_once, services)
        except Exception:
            log.exception("image lifecycle failed")
