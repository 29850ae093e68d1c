"""Storage quotas: a push that would take a registry's stored bytes past its quota is
refused (`QuotaExceeded`, DENIED) and leaves nothing behind.

The quota is the registry's own (`storage_quota_bytes`) or else its tier's storage
limit; the use is the sum of its blob rows' sizes, each blob counted once however many
repositories link it. Three checks, from cheap and early to exact and final:

- before any byte is stored, when the request says its size (Content-Length, or a
  chunk's Content-Range): the use now, plus what the upload holds, plus the request's
  bytes must fit;
- while a body of unknown length streams: the upload stops as soon as it crosses what
  was left when it started (`limited`);
- when the blob's row is committed, under the writers' lock (`check_commit`): the only
  exact check, so two uploads that each fit alone cannot together pass the quota.
  A blob the registry stores already adds nothing and is never refused.

Bytes of uploads in progress do not count: only committed blobs do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

from dockyard.common.errors import QuotaExceeded
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata, Transaction
from dockyard.metadata.usage import StorageRecord, UsageStore, UsageWrites
from dockyard.tiers.sizes import format_size
from dockyard.tiers.tiers import tier_named


def quota_of(storage: StorageRecord) -> int:
    """The registry's storage quota in bytes: its own, else its tier's limit."""
    if storage.quota_bytes is not None:
        return storage.quota_bytes
    return tier_named(storage.sku).storage_limit


def refusal(registry: RegistryRecord, storage: StorageRecord, adding: int) -> QuotaExceeded:
    quota = quota_of(storage)
    source = "its own quota" if storage.quota_bytes is not None else f"the {storage.sku} tier"
    return QuotaExceeded(
        f"storage quota of registry {registry.name} exceeded: {format_size(storage.used_bytes)}"
        f" of {format_size(quota)} ({source}) used, and this push needs "
        f"{format_size(adding)} more; delete images and run `dockyard gc`, or raise the "
        f"quota (`dockyard registry update -n {registry.name} --sku Premium` or "
        "`--storage-quota SIZE`)",
        detail={"quota": quota, "used": storage.used_bytes, "needed": adding},
    )


class StorageQuota:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta
        self._usage = UsageStore(meta)

    def room(self, registry: RegistryRecord) -> int:
        """Bytes the registry may still store now (one primary-key read)."""
        storage = self._usage.storage(registry.id)
        return quota_of(storage) - storage.used_bytes

    def check(self, registry: RegistryRecord, adding: int, digest: str | None = None) -> None:
        """Refuse, before storing them, `adding` bytes that would not fit now, unless
        they are `digest`'s and the registry stores that blob already."""
        storage = self._usage.storage(registry.id)
        if storage.used_bytes + adding <= quota_of(storage):
            return
        if digest is not None and self._meta.blob_size(registry.id, digest) is not None:
            return
        raise refusal(registry, storage, adding)

    def check_commit(self, tx: Transaction, registry: RegistryRecord, size: int) -> None:
        """`check_commit` in the transaction that added the blob's row."""
        check_commit(UsageWrites(tx), registry, size)

    def limited(
        self, registry: RegistryRecord, body: AsyncIterator[bytes], held: int
    ) -> AsyncIterator[bytes]:
        """`body` (of unknown length, for an upload that holds `held` bytes already),
        stopped with `QuotaExceeded` as soon as it passes the room left now."""
        return _limited(self._usage, registry, body, self.room(registry) - held, held)


async def _limited(
    usage: UsageStore,
    registry: RegistryRecord,
    body: AsyncIterator[bytes],
    allowance: int,
    held: int,
) -> AsyncIterator[bytes]:
    received = 0
    async for chunk in body:
        received += len(chunk)
        if received > allowance:
            storage = usage.storage(registry.id)
            raise refusal(registry, storage, held + received)
        yield chunk


def check_commit(writes: UsageWrites, registry: RegistryRecord, size: int) -> None:
    """Inside the transaction that has just added a new blob row of `size` bytes (and
    counted them): the exact check. Raising rolls the row back."""
    storage = writes.storage(registry.id)
    if storage.used_bytes > quota_of(storage):
        raise refusal(registry, replace(storage, used_bytes=storage.used_bytes - size), size)
