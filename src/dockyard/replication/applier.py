"""What a region does with the changes a peer sends (`api.py` calls it): blobs and
manifests are content, stored once and idempotently; tag writes and deletes follow the
conflict rule (`stamps`): a write applies only if its stamp is later than that of the
tag's current value here, so applying the same write twice, or an older one after a
newer, changes nothing.

The stamp of a tag's current value here: the stamp recorded when a peer's write was
applied (`tag_stamps`), unless a client of this region wrote the tag since; then its
stamp is the time of that write (the outbox event that says so: a push or a restore
naming the tag, or for a delete an untag or a delete) with this region's name: exactly
the stamp this region's sender gives it. Not the tag's `updated_at`, which a change of
its locks moves too.

Locks and quarantine states are values of their own (each lock of a repository, tag or
manifest; each manifest's state), by the same rule: a peer's write applies if its stamp
is later than the stamp of the value here, the peer's last applied
(`attribute_stamps`) or this region's last own change (its outbox event's time).
Applied for a peer, a change is never refused by this region's locks
(`core.manifests.Replicated`), and a delete goes to the recycle bin here if it went to
the peer's."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from dockyard.common.errors import DigestInvalid, ManifestUnknown, NameUnknown
from dockyard.core.blobs import Blobs
from dockyard.core.digests import digest_bytes
from dockyard.core.locks import WIRE_NAMES
from dockyard.core.manifests import Manifests, Replicated, TagGuard
from dockyard.core.uploads import Uploads
from dockyard.metadata import quarantine
from dockyard.metadata.attributes import AttributeWrites
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.recycle_bin import RecycleBin
from dockyard.metadata.replication import (
    AttributeStampWrites,
    TagRow,
    TagStampRecord,
    TagStampWrites,
    last_local_delete,
    last_local_lock,
    last_local_quarantine,
    last_local_write,
    manifest_digests_in,
    tag_row,
    tags_on,
)
from dockyard.metadata.store import Metadata, Transaction
from dockyard.quarantine.states import write_state
from dockyard.replication.bundles import BlobChange, Change, ManifestChange
from dockyard.replication.priority import low_priority_threads
from dockyard.replication.stamps import ORIGIN, Stamp

# The caller recorded for a change applied for a peer region (`api.py`): its outbox
# events are not sent on, and are not this region's own writes.
PEER_CALLER = "replication:"
QUARANTINE_STATE = "quarantineState"
# ACR's names of the locks, to the columns' (`AttributeWrites.set_locks`).
LOCK_COLUMNS = {wire: name for name, wire in WIRE_NAMES.items()}


def current_stamp(tx: Transaction, home: str, registry_id: int, repo: str, tag: str) -> Stamp:
    """The stamp of the tag's value here now (see the module's docstring)."""
    return _current(tx, home, registry_id, repo, tag)[0]


def _current(
    tx: Transaction, home: str, registry_id: int, repo: str, tag: str
) -> tuple[Stamp, TagRow | None]:
    """The stamp of the tag's value here now, and the tag's row (None: not here)."""
    entry = TagStampWrites(tx).get(registry_id, repo, tag)
    row = tag_row(tx.conn, registry_id, repo, tag)
    since = None if entry is None else entry.observed_at
    if row is not None:
        written = last_local_write(tx.conn, registry_id, repo, tag, since, PEER_CALLER)
        if written is not None:
            return Stamp.at(written, home), row
        if entry is not None and entry.digest == row.digest:
            return Stamp(entry.wall, entry.region), row
        return Stamp.at(row.updated_at, home), row  # written before its events were kept
    deleted = last_local_delete(tx.conn, registry_id, repo, tag, since)
    if deleted is not None:
        return Stamp.at(deleted, home), row
    return (ORIGIN if entry is None else Stamp(entry.wall, entry.region)), row


@dataclass(frozen=True)
class LockValue:
    """One lock as it is here, with the stamp of its value: what a new replica is sent."""

    tag: str | None
    digest: str | None
    name: str  # ACR's
    value: bool
    stamp: Stamp


@dataclass(frozen=True)
class StateValue:
    """A manifest's quarantine state as it is here, with its stamp."""

    digest: str
    state: str
    details: str | None
    stamp: Stamp


def attribute_values(
    meta: Metadata, tx: Transaction, home: str, registry_id: int, repo: str
) -> tuple[list[LockValue], list[StateValue]]:
    """The repository's locks (its own, its tags', its manifests') and its manifests'
    quarantine states whose writes are known (a stamp), with those stamps, so a new
    replica applies them by the same rule as the changes sent later."""
    found = AttributeWrites(tx).repository_locks(registry_id, repo)
    if found is None:
        return [], []
    content = AttributeWrites(tx).content_locks(found.id)
    targets: list[tuple[str | None, str | None, object]] = [(None, None, found.locks)]
    targets += [(tag, None, locks) for tag, locks in content.tags.items()]
    targets += [(None, digest, locks) for digest, locks in content.manifests.items()]
    values = []
    for tag, digest, locks in targets:
        for column, wire in WIRE_NAMES.items():
            local = last_local_lock(tx.conn, registry_id, repo, tag, digest, wire)
            stamp = _stamp_of(tx, home, registry_id, repo, _target(tag, digest), wire, local)
            if stamp != ORIGIN:
                values.append(LockValue(tag, digest, wire, getattr(locks, column), stamp))
    states = []
    stored_states = quarantine.states_of(meta, registry_id, repo, content.manifests)
    for digest, stored in stored_states.items():
        local = last_local_quarantine(tx.conn, registry_id, repo, digest, PEER_CALLER)
        target = _target(None, digest)
        stamp = _stamp_of(tx, home, registry_id, repo, target, QUARANTINE_STATE, local)
        if stamp != ORIGIN:
            states.append(StateValue(digest, stored.state, stored.details, stamp))
    return values, states


def _stamp_of(
    tx: Transaction,
    home: str,
    registry_id: int,
    repo: str,
    target: str,
    attribute: str,
    local: datetime | None,
) -> Stamp:
    """The stamp of an attribute's value here: the later of the last peer's write
    applied here and this region's own last write (its outbox event's time)."""
    entry = AttributeStampWrites(tx).get(registry_id, repo, target, attribute)
    peer = ORIGIN if entry is None else Stamp(*entry)
    return peer if local is None else max(peer, Stamp.at(local, home))


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
        self._threads = low_priority_threads(1, "replication-apply")

    # -- content -----------------------------------------------------------------------

    def link_blob(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        """Link a blob this region stores already; False when its bytes must be sent."""
        if self._meta.linked_blob(registry.id, repo, digest) is not None:
            return True
        return self._blobs.link_stored(registry, repo, digest, replicated=True)

    async def put_blob(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        body: AsyncIterator[bytes],
        length: int | None,
    ) -> None:
        """Store a blob's bytes, verified against its digest (`Uploads.upload_whole`)."""
        await self._uploads.upload_whole(registry, repo, digest, body, length, replicated=True)

    async def start_blob(self, registry: RegistryRecord, repo: str) -> str:
        """An upload session for a blob's bytes sent in parts (`Uploads`), so a transfer
        broken off continues where it stopped; its id."""
        return (await self._uploads.start(registry, repo, replicated=True)).id

    def blob_received(self, registry: RegistryRecord, repo: str, upload_id: str) -> int:
        """How many bytes of the session are here."""
        return self._uploads.status(registry, repo, upload_id).size

    async def append_blob(
        self,
        registry: RegistryRecord,
        repo: str,
        upload_id: str,
        offset: int,
        body: AsyncIterator[bytes],
        length: int | None,
    ) -> int:
        """Bytes from `offset`, which must be what the session holds (else `RangeInvalid`,
        with its size); the size after."""
        state = await self._uploads.append(registry, repo, upload_id, body, offset, length)
        return state.size

    async def finish_blob(
        self, registry: RegistryRecord, repo: str, upload_id: str, digest: str
    ) -> None:
        """Verify the session's bytes against `digest` and store the blob."""
        await self._uploads.finish(registry, repo, upload_id, digest, _nothing())

    async def put_manifest(
        self, registry: RegistryRecord, repo: str, digest: str, body: bytes, media_type: str
    ) -> None:
        """Store a manifest by digest; its blobs and children must be here already."""
        if self._meta.manifest_by_digest(registry.id, repo, digest) is None:
            await self._manifests.put_in_turn(
                registry, repo, digest, body, media_type, replicated=Replicated()
            )

    async def put_tagged(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        body: bytes,
        media_type: str,
        tag: str,
        stamp: Stamp,
        restored: bool = False,
    ) -> bool:
        """A manifest and a write of `tag` naming it, in one push (one event, as where it
        was made) if the write applies; else the manifest alone. True if the tag's write
        applied."""
        if not digest.startswith("sha256:"):  # a push by tag digests with sha256 only
            await self.put_manifest(registry, repo, digest, body, media_type)
            return await self.write_tag(registry, repo, tag, digest, stamp, restored=restored)
        if digest_bytes(body) != digest:
            raise DigestInvalid(f"the manifest's digest is not {digest}", detail={"digest": digest})
        self._observe(stamp.moment())
        guard = self._guard(registry, repo, tag, digest, stamp)
        try:
            await self._manifests.put_in_turn(
                registry, repo, tag, body, media_type, before_tag=guard, replicated=Replicated()
            )
        except _Superseded:
            applied = False
            await self.put_manifest(registry, repo, digest, body, media_type)
        else:
            applied = True
        if restored:
            self._unbin_tag(registry, repo, tag, digest, applied)
        return applied

    async def apply(self, registry: RegistryRecord, changes: Sequence[Change]) -> list[bool | None]:
        """A bundle's changes (`bundles`), as their own requests would apply them, with
        fewer writes: its blobs first, each verified by its digest and stored unless it
        is here, in two transactions for all of them (`Uploads.put_small_blobs`); then
        its manifests in its order, each after its blobs and children, with its tag's
        write if it has one, all in one transaction (each tag write refused by the
        conflict rule rolled back to its savepoint alone). For each change, whether its
        tag's write applied (None: no tag). Any failure applies none of the manifests,
        and the sender sends the changes again (each applies once)."""
        blobs = [(c.repository, c.digest, c.data) for c in changes if isinstance(c, BlobChange)]
        if blobs:
            await self._uploads.put_small_blobs(registry, blobs)
        manifests = [c for c in changes if isinstance(c, ManifestChange)]
        applied = iter(await self._put_manifests(registry, manifests))
        return [None if isinstance(c, BlobChange) else next(applied) for c in changes]

    async def _put_manifests(
        self, registry: RegistryRecord, manifests: Sequence[ManifestChange]
    ) -> list[bool | None]:
        if not all(c.digest.startswith("sha256:") for c in manifests):
            return [await self._put_one(registry, c) for c in manifests]  # one at a time
        for change in manifests:
            if digest_bytes(change.body) != change.digest:
                raise DigestInvalid(
                    f"the manifest's digest is not {change.digest}",
                    detail={"digest": change.digest},
                )
            if change.stamp is not None:
                self._observe(change.stamp.moment())
        wanted = [
            c.tag is not None
            or self._meta.manifest_by_digest(registry.id, c.repository, c.digest) is None
            for c in manifests
        ]

        def put_all() -> list[bool | None]:
            with self._meta.transaction() as tx:
                return [
                    self._put_in(tx, registry, change) if needed else None
                    for change, needed in zip(manifests, wanted, strict=True)
                ]

        # In a thread of low CPU priority, which waits there for the writers' turn; in
        # the request's context, whose caller (the peer) the events record.
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        applied = await loop.run_in_executor(self._threads, context.run, put_all)
        for change, tagged in zip(manifests, applied, strict=True):
            if change.restored and change.tag is not None:
                self._unbin_tag(
                    registry, change.repository, change.tag, change.digest, bool(tagged)
                )
        return applied

    def _put_in(
        self, tx: Transaction, registry: RegistryRecord, change: ManifestChange
    ) -> bool | None:
        """One manifest of a bundle, in its transaction: whether its tag's write applied."""
        repo, body, media_type = change.repository, change.body, change.media_type
        if change.tag is None or change.stamp is None:
            self._manifests.put(
                registry, repo, change.digest, body, media_type, replicated=Replicated(), tx=tx
            )
            return None
        guard = self._guard(registry, repo, change.tag, change.digest, change.stamp)
        try:
            with tx.savepoint():
                self._manifests.put(
                    registry,
                    repo,
                    change.tag,
                    body,
                    media_type,
                    before_tag=guard,
                    replicated=Replicated(),
                    tx=tx,
                )
        except _Superseded:
            self._manifests.put(
                registry, repo, change.digest, body, media_type, replicated=Replicated(), tx=tx
            )
            return False
        return True

    async def _put_one(self, registry: RegistryRecord, change: ManifestChange) -> bool | None:
        """One manifest of a bundle, as its own request would apply it."""
        repo, digest, body, media_type = (
            change.repository,
            change.digest,
            change.body,
            change.media_type,
        )
        if change.tag is None or change.stamp is None:
            await self.put_manifest(registry, repo, digest, body, media_type)
            return None
        return await self.put_tagged(
            registry,
            repo,
            digest,
            body,
            media_type,
            change.tag,
            change.stamp,
            restored=change.restored,
        )

    def holds(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        """Whether the manifest is here, with its blobs and children (stored after them)."""
        return self._meta.manifest_by_digest(registry.id, repo, digest) is not None

    # -- tags and deletes ----------------------------------------------------------------

    async def write_tag(
        self,
        registry: RegistryRecord,
        repo: str,
        tag: str,
        digest: str | None,
        stamp: Stamp,
        soft: bool = False,
        restored: bool = False,
    ) -> bool:
        """Apply a peer's write of `tag` (None: its delete, into the recycle bin if
        `soft`) if `stamp` is later than the tag's value here; True if it applied. A
        write names a manifest sent before it; a `restored` one took the tag out of the
        peer's recycle bin, and takes it out of this region's too."""
        self._observe(stamp.moment())
        if digest is None:
            return self._untag(registry, repo, tag, stamp, soft)
        record = self._meta.manifest_by_digest(registry.id, repo, digest)
        if record is None:
            raise ManifestUnknown(
                f"{repo}@{digest} is not here yet: send it before its tag",
                detail={"name": repo, "reference": digest},
            )
        guard = self._guard(registry, repo, tag, digest, stamp)
        try:
            await self._manifests.put_in_turn(
                registry,
                repo,
                tag,
                record.body,
                record.media_type,
                before_tag=guard,
                replicated=Replicated(),
            )
        except _Superseded:
            applied = False
        else:
            applied = True
        if restored:
            self._unbin_tag(registry, repo, tag, digest, applied)
        return applied

    def _unbin_tag(
        self, registry: RegistryRecord, repo: str, tag: str, digest: str, applied: bool
    ) -> None:
        """The peer restored `tag`: it leaves the bin here too, and gets back the locks
        it had when deleted if the restore applied (as the peer's restore did)."""
        with self._meta.transaction() as tx:
            binned = RecycleBin(tx).take_tag(registry.id, repo, tag, digest)
            writes = AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if binned is not None and applied and found is not None:
                writes.set_locks(found.id, asdict(binned), tag=tag)

    def delete_manifest(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        tags: tuple[str, ...],
        stamp: Stamp,
        soft: bool = False,
    ) -> bool:
        """A peer deleted a manifest with `tags` on it (into its recycle bin if `soft`):
        each of those, and each tag on it here, is deleted as of `stamp` (a later write
        keeps its tag); the manifest goes once no tag names it, into the bin here too if
        it went there. True if it went."""
        self._observe(stamp.moment())
        with self._meta.connection() as conn:
            here = tags_on(conn, registry.id, repo, digest)
        for tag in sorted({*tags, *here}):
            self._untag(registry, repo, tag, stamp, soft)
        with self._meta.connection() as conn:
            if tags_on(conn, registry.id, repo, digest):
                return False
        try:
            self._manifests.delete_manifest(registry, repo, digest, Replicated(soft))
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
            self._manifests.delete_repository(registry, repo, Replicated())
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
            current, row = _current(tx, self._home, registry.id, repo, tag)
            if stamp <= current:
                raise _Superseded
            unchanged = digest is not None and row is not None and row.digest == digest
            observed = row.updated_at if unchanged and row is not None else tx.now
            TagStampWrites(tx).put(
                registry.id, repo, tag, TagStampRecord(stamp.wall, stamp.region, digest, observed)
            )

        return guard

    def _untag(
        self, registry: RegistryRecord, repo: str, tag: str, stamp: Stamp, soft: bool = False
    ) -> bool:
        """Delete the tag here as of `stamp` (into the recycle bin if `soft`), keeping the
        tombstone; True if it applied (a tag that is not here gets the tombstone alone)."""
        guard = self._guard(registry, repo, tag, None, stamp)
        try:
            self._manifests.untag(
                registry, repo, tag, before_tag=guard, replicated=Replicated(soft)
            )
        except _Superseded:
            return False
        except ManifestUnknown:
            try:
                with self._meta.transaction() as tx:
                    guard(tx)
            except _Superseded:
                return False
        return True

    # -- attributes: locks and quarantine states -------------------------------------------

    def write_locks(
        self,
        registry: RegistryRecord,
        repo: str,
        tag: str | None,
        digest: str | None,
        changes: Mapping[str, bool],
        stamp: Stamp,
    ) -> list[str]:
        """Apply a peer's change of the locks (ACR's names) of the repository, or of its
        tag or manifest: each lock is a value of its own, written if `stamp` is later
        than that of its value here, in one transaction. The locks it applied; none if
        the target is not here (deleted here: a lock on nothing is moot)."""
        self._observe(stamp.moment())
        target = _target(tag, digest)
        applied = []
        with self._meta.transaction() as tx:
            writes, stamps = AttributeWrites(tx), AttributeStampWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if found is None:
                return []
            for wire, value in sorted(changes.items()):
                local = last_local_lock(tx.conn, registry.id, repo, tag, digest, wire)
                if stamp <= _stamp_of(tx, self._home, registry.id, repo, target, wire, local):
                    continue
                if not writes.set_locks(
                    found.id, {LOCK_COLUMNS[wire]: value}, tag=tag, digest=digest
                ):
                    continue
                stamps.put(registry.id, repo, target, wire, stamp.wall, stamp.region)
                applied.append(wire)
        return applied

    def set_quarantine(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        state: str,
        details: str | None,
        stamp: Stamp,
    ) -> bool:
        """Apply a peer's quarantine state of a manifest (and its children, as a writer's
        does) if `stamp` is later than that of its state here; a change writes the
        quarantine events a writer's would (a release sends the `push` webhook here).
        True if it applied."""
        self._observe(stamp.moment())
        held = quarantine.policy_enabled(self._meta, registry.id, fresh=True)
        target = _target(None, digest)
        with self._meta.transaction() as tx:
            local = last_local_quarantine(tx.conn, registry.id, repo, digest, PEER_CALLER)
            if stamp <= _stamp_of(
                tx, self._home, registry.id, repo, target, QUARANTINE_STATE, local
            ):
                return False
            if write_state(tx, registry, repo, digest, state, details, held) is None:
                return False
            AttributeStampWrites(tx).put(
                registry.id, repo, target, QUARANTINE_STATE, stamp.wall, stamp.region
            )
        return True


def _target(tag: str | None, digest: str | None) -> str:
    """How `attribute_stamps` names what an attribute belongs to."""
    if tag is not None:
        return f"tag:{tag}"
    return "" if digest is None else f"manifest:{digest}"


async def _nothing() -> AsyncIterator[bytes]:
    """An empty final chunk."""
    return
    yield


class _Superseded(Exception):
    """A peer's tag write older than the tag's value here: left unapplied."""
