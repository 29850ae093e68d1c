"""Online garbage collection: removes what no manifest needs any more, found from the
database (never by walking storage), while pushes go on.

A run, per registry: first the blob links no manifest of their repository references
and that are older than the grace period (a blob pushed ahead of its manifest keeps its
link that long), then the blobs no repository links any more: their rows, and their
bytes while the same write transaction still holds the writers' lock, so no upload can
commit a row for a digest whose bytes are being removed (an upload's commit checks, under
that lock, that its published bytes still exist, and publishes them again if not). Work
is done in small batches, each one short write transaction, so pushes are never kept
waiting long, and the collector pauses between batches so that it holds the writers'
lock for at most `lock_share` of its run: back to back, its batches took the lock again
before the pushes waiting for it (SQLite's waiters poll for it), and pushes ran at a
fifth of their rate during a collection. A whole-server run also sweeps expired upload
sessions (`Uploads.expire`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dockyard.common.clock import Clock
from dockyard.core.uploads import Uploads
from dockyard.metadata.garbage import GarbageWrites, LinkKey, garbage
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

# Rows (and blobs) removed per write transaction: small enough that a push waiting for
# the writers' lock waits a few milliseconds, big enough that S3 deletes are batched.
BATCH = 100


@dataclass(frozen=True)
class GarbageReport:
    """What a run removed (or, for a dry run, would remove). `uploads` counts upload
    sessions and leftover upload data removed."""

    links: int = 0
    blobs: int = 0
    bytes: int = 0
    uploads: int = 0

    def __add__(self, other: GarbageReport) -> GarbageReport:
        return GarbageReport(
            self.links + other.links,
            self.blobs + other.blobs,
            self.bytes + other.bytes,
            self.uploads + other.uploads,
        )


class GarbageCollector:
    def __init__(
        self,
        meta: Metadata,
        stores: BlobStores,
        uploads: Uploads,
        clock: Clock,
        lock_share: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """`lock_share` (0 < share <= 1): the most of its run the collector spends in its
        write transactions; after a batch that took t seconds it sleeps t * (1 - share) /
        share. `sleep` and `timer` are for tests."""
        if not 0 < lock_share <= 1:
            raise ValueError(f"lock_share must be in (0, 1], not {lock_share}")
        self._meta = meta
        self._stores = stores
        self._uploads = uploads
        self._clock = clock
        self._rest = (1 - lock_share) / lock_share
        self._sleep = sleep
        self._timer = timer

    def _batch_done(self, started: float) -> None:
        """Let the writers waiting for the lock have it before the next batch."""
        if self._rest:
            self._sleep((self._timer() - started) * self._rest)

    def collect(
        self,
        grace: timedelta,
        upload_expiry: timedelta,
        registry: RegistryRecord | None = None,
        dry_run: bool = False,
    ) -> GarbageReport:
        """Collect one registry, or every registry and the expired upload sessions.
        Links made (or last unreferenced) less than `grace` ago are kept."""
        now = self._clock()
        cutoff = now - grace
        report = GarbageReport()
        if registry is None:
            if dry_run:
                expired = len(self._meta.uploads_idle_since(now - upload_expiry))
            else:
                expired = self._uploads.expire(upload_expiry)
            report += GarbageReport(uploads=expired)
        for record in [registry] if registry is not None else self._meta.registries():
            if dry_run:
                found = garbage(self._meta, record.id, cutoff)
                report += GarbageReport(found.links, found.blobs, found.bytes)
            else:
                report += GarbageReport(links=self._remove_links(record, cutoff))
                report += self._remove_blobs(record)
        return report

    def _remove_links(self, registry: RegistryRecord, cutoff: datetime) -> int:
        removed, after = 0, None
        while True:
            started = self._timer()
            with self._meta.transaction() as tx:
                writes = GarbageWrites(tx)
                links: list[LinkKey] = writes.garbage_links(registry.id, cutoff, after, BATCH)
                writes.delete_links(links)
            self._batch_done(started)
            removed += len(links)
            if len(links) < BATCH:
                return removed
            after = links[-1]

    def _remove_blobs(self, registry: RegistryRecord) -> GarbageReport:
        store = self._stores.for_registry(registry.name)
        blobs = size = 0
        after = ""
        while True:
            started = self._timer()
            with self._meta.transaction() as tx:
                writes = GarbageWrites(tx)
                found = writes.unlinked_blobs(registry.id, after, BATCH)
                digests = [digest for digest, _ in found]
                writes.delete_blobs(registry.id, digests)
                # Inside the transaction: the writers' lock keeps every upload of these
                # digests from committing a row until their bytes are gone.
                store.delete(*digests)
            self._batch_done(started)
            blobs += len(found)
            size += sum(blob_size for _, blob_size in found)
            if len(found) < BATCH:
                return GarbageReport(blobs=blobs, bytes=size)
            after = digests[-1]
