"""Scanning's background work: scan on push (an outbox consumer of `ManifestPushed`,
for registries with the switch on), and rescans after the vulnerability database
changed (a job: every scan older than the newest imported advisory is made again,
a few at a time, oldest first)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from dockyard.common.errors import ManifestUnknown, NameUnknown

if TYPE_CHECKING:
    from dockyard.core.events import Envelope
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services

log = logging.getLogger("dockyard")

CONSUMER = "scanning"
RESCAN_SECONDS = 10.0  # how often the job looks whether the database changed
_RESCAN_BATCH = 20


def _registry(services: Services, registry_id: int) -> RegistryRecord | None:
    return next((r for r in services.meta.registries() if r.id == registry_id), None)


def scan_pushed(services: Services, stored: Envelope) -> None:
    """The consumer's handler: scan a pushed image if its registry scans on push and it
    has no scan as new as the database (a tag moved onto a scanned image is not scanned
    again). An image deleted before its turn is skipped; any other failure is the
    outbox's to retry."""
    from dockyard.core.events import ManifestPushed
    from dockyard.metadata import scanning as rows

    event = stored.event
    assert isinstance(event, ManifestPushed)
    if not services.scan_policies.get(event.registry_id).scan_on_push:
        return
    found = rows.scan_of(services.meta, event.registry_id, event.digest)
    if found is not None:
        changed = rows.database_changed_at(services.meta)
        if changed is None or found.scanned_at >= changed:
            return
    registry = _registry(services, event.registry_id)
    if registry is None:
        return
    try:
        services.scanner.scan(registry, event.repository, event.digest)
    except (ManifestUnknown, NameUnknown):
        log.info("not scanned, gone: %s@%s", event.repository, event.digest)


def rescan_once(services: Services, limit: int = _RESCAN_BATCH) -> int:
    """Scan again up to `limit` images scanned before the database last changed; how
    many were. A scan whose image is gone is forgotten."""
    from dockyard.metadata import scanning as rows

    changed = rows.database_changed_at(services.meta)
    if changed is None:
        return 0
    done = 0
    for registry_id, repo, digest in rows.stale_scans(services.meta, changed, limit):
        registry = _registry(services, registry_id)
        try:
            if registry is None:
                raise ManifestUnknown()
            services.scanner.scan(registry, repo, digest)
        except (ManifestUnknown, NameUnknown):
            with services.meta.transaction() as tx:
                rows.forget_scan(tx, registry_id, digest)
        done += 1
    return done


async def rescan_after_imports(services: Services) -> None:
    """The job: `rescan_once` until nothing is left, then a look every `RESCAN_SECONDS`."""
    while True:
        try:
            done = await asyncio.to_thread(rescan_once, services)
        except Exception:
            log.exception("rescanning after a vulnerability database import failed")
            done = 0
        if done:
            log.info("rescanned %d images after a vulnerability database import", done)
            continue
        await asyncio.sleep(RESCAN_SECONDS)
