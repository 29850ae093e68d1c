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

from collections.abc import AsyncIterator, Callable
from datetime import datetime

from dockyard.common.errors import ManifestUnknown, NameUnknown
from dockyard.core.blobs import Blobs
from dockyard.core.manifests import Manifests, TagGuard
from dockyard.core.uploads import Uploads
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.replication import (
    TagStampRecord,
    TagStampWrites,
    last_local_delete,
    manifest_digests_in,
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

    def holds(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        """Whether the manifest is here, with its blobs and children (stored after them)."""
        return self._meta.manifest_by_digest(registry.id, repo, digest) is not None

    # -- tags and deletes ----------------------------------------------------------------

    async def write_tag(
        self, registry: RegistryRecord, repo: str, tag: str, digest: str | None, stamp: Stamp
    ) -> bool:
        """Apply a peer's write of `tag` (None: its delete) if `stamp` is later than the
        tag's value here; True if it applied. A write names a manifest sent before it."""
        self._observe(stamp.moment())
        if digest is None:
            return self._untag(registry, repo, tag, stamp)
        record = self._meta.manifest_by_digest(registry.id, repo, digest)
        if record is None:
            raise ManifestUnknown(
                f"{repo}@{digest} is not here yet: send it before its tag",
                detail={"name": repo, "reference": digest},
            )
        guard = self._guard(registry, repo, tag, digest, stamp)
        try:
            await self._manifests.put_in_turn(
                registry, repo, tag, record.body, record.media_type, before_tag=guard
            )
        except _Superseded:
            return False
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
        for tag in sorted({*tags, *here}):
            self._untag(registry, repo, tag, stamp)
        with self._meta.connection() as conn:
            if tags_on(conn, registry.id, repo, digest):
                return False
        try:
            self._manifests.delete_manifest(registry, repo, digest)
        except ManifestUnknown:
            return False
        return True

    def delete_repository(self, registry: RegistryRecord, repo: str) -> bool:
        """A peer deleted the repository (its tags and manifests came as deletes before):
        it goes here too once nothing in it is left, as a later write keeps it. True if
        it went."""
        with self._meta.connection() as conn:
            left = manifest_digests_in(conn, registry.id, repo)
        if left:
            return False
        try:
            self._manifests.delete_repository(registry, repo)
        except NameUnknown:
            return False
        return True

    def _guard(
        self, registry: RegistryRecord, repo: str, tag: str, digest: str | None, stamp: Stamp
    ) -> TagGuard:
        """The conflict rule, run in the transaction that writes the tag (under the
        writers' lock, so no other write of the tag comes between): refuse unless
        `stamp` is later than the tag's value here, else record it with the tag's
        `updated_at` as the write will leave it."""

        def guard(tx: Transaction) -> None:
            if stamp <= current_stamp(tx, self._home, registry.id, repo, tag):
                raise _Superseded
            row = tag_row(tx.conn, registry.id, repo, tag)
            unchanged = digest is not None and row is not None and row.digest == digest
            observed = row.updated_at if unchanged and row is not None else tx.now
            TagStampWrites(tx).put(
                registry.id, repo, tag, TagStampRecord(stamp.wall, stamp.region, digest, observed)
            )

        return guard

    def _untag(self, registry: RegistryRecord, repo: str, tag: str, stamp: Stamp) -> bool:
        """Delete the tag here as of `stamp`, keeping the tombstone; True if it applied
        (a tag that is not here gets the tombstone alone)."""
        guard = self._guard(registry, repo, tag, None, stamp)
        try:
            self._manifests.untag(registry, repo, tag, before_tag=guard)
        except _Superseded:
            return False
        except ManifestUnknown:
            try:
                with self._meta.transaction() as tx:
                    guard(tx)
            except _Superseded:
                return False
        return True


class _Superseded(Exception):
    """A peer's tag write older than the tag's value here: left unapplied."""
