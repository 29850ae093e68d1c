"""What a region does with the changes a peer sends (`api.py` calls it): blobs and
manifests are content, stored once and idempotently; tag writes and deletes follow the
conflict rule (`stamps`): a write applies only if its stamp is later than that of the
tag's current value here, so applying the same write twice, or an older one after a
newer, changes nothing.

The stamp of a tag's current value here: the stamp recorded when a peer's write was
applied (`tag_stamps`), as long as the tag has not changed since (its `updated_at` is
the one recorded); otherwise the tag was written here, and its stamp is the time of
that write (the tag's `updated_at`, or for a delete the time of the outbox event that
says so) with this region's name: exactly the stamp this region's sender gives it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from dockyard.common.errors import ManifestUnknown
from dockyard.core.blobs import Blobs
from dockyard.core.manifests import Manifests
from dockyard.core.uploads import Uploads
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.replication import (
    TagStampRecord,
    TagStampWrites,
    last_local_delete,
    tag_row,
    tags_on,
)
from dockyard.metadata.store import Metadata, Transaction
from dockyard.replication.stamps import ORIGIN, Stamp


def current_stamp(tx: Transaction, home: str, registry_id: int, repo: str, tag: str) -> Stamp:
    """The stamp of the tag's value here now (see the module's docstring)."""
    entry = TagStampWrites(tx).get(registry_id, repo, tag)
    row = tag_row(tx.conn, registry_id, repo, tag)
    if row is not None:
        if entry is not None and entry.digest == row.digest and entry.observed_at == row.updated_at:
            return Stamp(entry.wall, entry.region)
        return Stamp.at(row.updated_at, home)
    since = None if entry is None else entry.observed_at
    deleted = last_local_delete(tx.conn, registry_id, repo, tag, since)
    if deleted is not None:
        return Stamp.at(deleted, home)
    return ORIGIN if entry is None else Stamp(entry.wall, entry.region)


class Applier:
    def __init__(
        self,
        meta: Metadata,
        manifests: Manifests,
        blobs: Blobs,
        uploads: Uploads,
        home: str,
        observe: Callable[[datetime], None],
    ) -> None:
        """`observe`: the region's clock's (`HybridClock.observe`), shown every stamp a
        peer sends, so this region's later writes are stamped after it."""
        self._observe = observe
        self._meta = meta
        self._manifests = manifests
        self._blobs = blobs
        self._uploads = uploads
        self._home = home

    # -- content -----------------------------------------------------------------------

    def link_blob(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        """Link a blob this region stores already; False when its bytes must be sent."""
        if self._meta.linked_blob(registry.id, repo, digest) is not None:
            return True
        return self._blobs.link_stored(registry, repo, digest)

    async def put_blob(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        body: AsyncIterator[bytes],
        length: int | None,
    ) -> None:
        """Store a blob's bytes, verified against its digest (`Uploads.upload_whole`)."""
        await self._uploads.upload_whole(registry, repo, digest, body, length)

    async def put_manifest(
        self, registry: RegistryRecord, repo: str, digest: str, body: bytes, media_type: str
    ) -> None:
        """Store a manifest by digest; its blobs and children must be here already."""
        if self._meta.manifest_by_digest(registry.id, repo, digest) is None:
            await self._manifests.put_in_turn(registry, repo, digest, body, media_type)

    # -- tags and deletes ----------------------------------------------------------------

    async def write_tag(
        self, registry: RegistryRecord, repo: str, tag: str, digest: str | None, stamp: Stamp
    ) -> bool:
        """Apply a peer's write of `tag` (None: its delete) if `stamp` is later than the
        tag's value here; True if it applied. A write names a manifest sent before it."""
        self._observe(stamp.moment())
        if stamp <= self._stamp(registry, repo, tag):
            return False
        if digest is None:
            self._untag(registry, repo, tag, stamp)
            return True
        record = self._meta.manifest_by_digest(registry.id, repo, digest)
        if record is None:
            raise ManifestUnknown(
                f"{repo}@{digest} is not here yet: send it before its tag",
                detail={"name": repo, "reference": digest},
            )
        await self._manifests.put_in_turn(registry, repo, tag, record.body, record.media_type)
        with self._meta.transaction() as tx:
            row = tag_row(tx.conn, registry.id, repo, tag)
            observed = None if row is None else row.updated_at
            TagStampWrites(tx).put(
                registry.id, repo, tag, TagStampRecord(stamp.wall, stamp.region, digest, observed)
            )
        return True

    def delete_manifest(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        tags: tuple[str, ...],
        stamp: Stamp,
    ) -> bool:
        """A peer deleted a manifest with `tags` on it: each of those, and each tag on it
        here, is deleted as of `stamp` (a later write keeps its tag); the manifest goes
        once no tag names it. True if it went."""
        self._observe(stamp.moment())
        with self._meta.connection() as conn:
            here = tags_on(conn, registry.id, repo, digest)
        for tag in {*tags, *here}:
            if stamp > self._stamp(registry, repo, tag):
                self._untag(registry, repo, tag, stamp)
        with self._meta.connection() as conn:
            if tags_on(conn, registry.id, repo, digest):
                return False
        try:
            self._manifests.delete_manifest(registry, repo, digest)
        except ManifestUnknown:
            return False
        return True

    def _stamp(self, registry: RegistryRecord, repo: str, tag: str) -> Stamp:
        with self._meta.transaction() as tx:
            return current_stamp(tx, self._home, registry.id, repo, tag)

    def _untag(self, registry: RegistryRecord, repo: str, tag: str, stamp: Stamp) -> None:
        """Delete the tag here, if it is here, and keep `stamp` as its tombstone."""
        with contextlib.suppress(ManifestUnknown):  # not here: the tombstone is enough
            self._manifests.untag(registry, repo, tag)
        with self._meta.transaction() as tx:
            deleted: datetime | None = last_local_delete(tx.conn, registry.id, repo, tag, None)
            TagStampWrites(tx).put(
                registry.id, repo, tag, TagStampRecord(stamp.wall, stamp.region, None, deleted)
            )
