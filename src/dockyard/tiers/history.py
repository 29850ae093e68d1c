"""The history of each registry's storage in use, for the portal's usage chart: the
tiers' job writes every registry's `storage_used_bytes` as today's (UTC) row of
`storage_days` hourly (and at start), so the day's row ends as its last hour's value.
Days the server did not run have no row; the chart estimates those (`portal/charts.py`).
Rows older than `KEEP_DAYS` go in the same transaction."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from dockyard.metadata.usage import UsageWrites

if TYPE_CHECKING:
    from dockyard.metadata.store import Metadata
    from dockyard.services import Services

log = logging.getLogger(__name__)

RECORD_SECONDS = 3600
KEEP_DAYS = 400


def record_storage_day(meta: Metadata, now: datetime) -> None:
    today = now.astimezone(UTC).date()
    with meta.transaction() as tx:
        UsageWrites(tx).record_storage_day(today, today - timedelta(days=KEEP_DAYS))


async def record_storage_history(services: Services) -> None:
    """Today's storage of every registry, hourly (and at start)."""
    while True:
        try:
            await asyncio.to_thread(record_storage_day, services.meta, services.clock())
        except Exception:
            log.exception("recording the storage history failed")
        await asyncio.sleep(RECORD_SECONDS)
