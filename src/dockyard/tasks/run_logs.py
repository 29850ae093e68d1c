"""Runs' logs. While a run goes on, its log is a file in the running node's data
directory, written by the runner as lines end (CRLF, which az's log reader flushes on).
When the run has ended, `keep` moves it into the run's registry's blob store (the same
bytes, under their digest, encrypted where the registry's blobs are), so that every node
of a deployment reads it, and drops the file. `prune` removes what is older than the
retention (`[tasks] log_retention_days`). Reads by byte ranges (`blob_api.py`) take the
file where there is one, the stored copy otherwise. Knows nothing of HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.core.registries import Registries
from dockyard.metadata.store import Metadata
from dockyard.metadata.task_logs import StoredLog, TaskLogWrites, stored_before, stored_log
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from dockyard.services import Services

log = logging.getLogger(__name__)

PRUNE_SECONDS = 3600
_PRUNE_BATCH = 100


async def prune_logs(services: Services) -> None:
    """Runs' logs past `[tasks] log_retention_days`, hourly (and at start)."""
    while True:
        try:
            removed = await asyncio.to_thread(services.run_logs.prune, services.clock())
            if removed:
                log.info("run logs pruned", extra={"fields": {"count": removed}})
        except Exception:
            log.exception("run log pruning failed")
        await asyncio.sleep(PRUNE_SECONDS)


class RunLogs:
    def __init__(
        self,
        root: Path,
        meta: Metadata,
        stores: BlobStores,
        registries: Registries,
        retention: timedelta,
    ) -> None:
        self._root = root
        self._meta = meta
        self._stores = stores
        self._registries = registries
        self._retention = retention

    def path(self, registry_id: int, number: int) -> Path:
        return self._root / str(registry_id) / f"ca{number}.log"

    def start(self, registry_id: int, number: int) -> Path:
        path = self.path(registry_id, number)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    def size(self, registry_id: int, number: int) -> int | None:
        """Bytes written so far; None before the run started (or past the retention)."""
        try:
            return self.path(registry_id, number).stat().st_size
        except FileNotFoundError:
            pass
        stored = stored_log(self._meta, registry_id, number)
        return None if stored is None else stored.size

    def read(self, registry_id: int, number: int, start: int, end: int) -> bytes:
        """Bytes `start` to `end` inclusive (fewer at the end of what is written)."""
        try:
            with self.path(registry_id, number).open("rb") as local:
                local.seek(start)
                return local.read(end - start + 1)
        except FileNotFoundError:
            pass
        stored = stored_log(self._meta, registry_id, number)
        store = None if stored is None else self._store(registry_id)
        if stored is None or store is None:
            raise FileNotFoundError(f"the log of ca{number} is gone")
        with store.open(stored.digest) as kept:
            kept.seek(start)
            return kept.read(end - start + 1)

    def keep(self, run_key: int, registry_id: int, number: int) -> None:
        """The ended run's log into its registry's blob store, then the file goes. A log
        that cannot be stored stays a file of this node (read here, pruned here)."""
        path = self.path(registry_id, number)
        store = self._store(registry_id)
        if store is None or not path.is_file():
            return
        data = path.read_bytes()
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        upload = f"run-log-{uuid.uuid4().hex}"
        try:
            store.put_blob(upload, digest, data)
        finally:
            store.abort_upload(upload)
        with self._meta.transaction() as tx:
            TaskLogWrites(tx).add(run_key, digest, len(data))
        path.unlink(missing_ok=True)

    def prune(self, now: datetime) -> int:
        """Logs stored more than the retention before `now`, and this node's log files
        older than that (of runs whose log could not be stored); how many went."""
        removed = 0
        before = now - self._retention
        while batch := stored_before(self._meta, before, _PRUNE_BATCH):
            self._delete(batch)
            removed += len(batch)
        cutoff = time.time() - self._retention.total_seconds()
        for path in self._root.glob("*/ca*.log") if self._root.is_dir() else ():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                removed += 1
        return removed

    def _delete(self, batch: list[StoredLog]) -> None:
        """The bytes first: a row without bytes reads as gone, bytes without a row would
        stay forever."""
        for registry_id in {s.registry_id for s in batch}:
            store = self._store(registry_id)
            if store is not None:
                store.delete(*[s.digest for s in batch if s.registry_id == registry_id])
        with self._meta.transaction() as tx:
            TaskLogWrites(tx).remove([s.run_key for s in batch])

    def _store(self, registry_id: int) -> BlobStore | None:
        registry = next((r for r in self._registries.all() if r.id == registry_id), None)
        return None if registry is None else self._stores.for_registry(registry.name)


def crlf(text: str) -> bytes:
    """`text` with every line ended by CRLF."""
    return "".join(line + "\r\n" for line in text.splitlines()).encode()
