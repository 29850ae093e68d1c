"""The audit log's background job: pruning rows past `[audit] retention_days`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.services import Services

log = logging.getLogger("dockyard")

AUDIT_PRUNE_SECONDS = 3600


async def prune_audit_log(services: Services) -> None:
    """Delete audit rows past `[audit] retention_days`, hourly (and at start)."""
    while True:
        try:
            removed = await asyncio.to_thread(services.audit.prune)
            if removed:
                log.info("audit log pruned", extra={"fields": {"count": removed}})
        except Exception:
            log.exception("audit log pruning failed")
        await asyncio.sleep(AUDIT_PRUNE_SECONDS)
