"""Storing, reading and deleting manifests and tags in a repository, and whole
repositories.

A manifest is accepted only when every blob and child manifest it references is in the
repository; the push, tag move and outbox event commit in one transaction, with the lock
checks (`core.locks`) that guard them. What `/acr/v1` shows of a manifest (platform,
config media type, image size) is worked out once, at push time."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime

import orjson

from dockyard.common.errors import (
    Denied,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameUnknown,
    TagExists,
    TagInvalid,
)
from dockyard.common.names import check_repository_name, check_tag
from dockyard.core import events, locks
from dockyard.core.digests import algorithm_of, digest_bytes, is_digest, parse_digest
from dockyard.core.events import request_origin
from dockyard.core.manifest_formats import IMAGE_TYPES, Descriptor, Manifest, parse_manifest
from dockyard.core.policies import ManifestPolicies
from dockyard.metadata.attributes import AttributeWrites
from dockyard.metadata.lifecycle import LifecycleWrites, Policies
from dockyard.metadata.records import ManifestContent, ManifestRecord, RegistryRecord
from dockyard.metadata.recycle_bin import RecycleBin
from dockyard.metadata.store import Metadata, Transaction
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores

# Image configs are read at push time for their platform only when at most this big:
# real ones are a few KiB; a big "config" is an artifact's payload, not worth reading.
MAX_CONFIG_READ = 64 * 1024


@dataclass(frozen=True)
class PushResult:
    digest: str
    subject: str | None


@dataclass(frozen=True)
class RepositoryDeleted:
    digests: list[str]
    tags: list[str]


def is_reference(reference: str) -> bool:
    """Whether a manifest can be stored under `reference`: a valid tag, or a digest of an
    algorithm this registry verifies. Asked only when a read found nothing."""
    try:
        if is_digest(reference):
            parse_digest(reference)
        else:
            check_tag(reference)
    except (DigestInvalid, TagInvalid):
        return False
    return True


# Runs inside the transaction that sets or deletes a tag, under the writers' lock; raises
# to leave the tag as it is (the transaction rolls back).
TagGuard = Callable[[Transaction], None]


@dataclass(frozen=True)
class Replicated:
    """A change a peer region made, applied here (geo-replication): this region's locks
    do not refuse it (it was allowed where it was made, and every region must apply it
    for all to converge; a lock binds this region's own clients once it is here), and
    what it deletes goes to the recycle bin as it did where it was made (`soft`),
    whatever this region's soft delete policy says. A manifest this region holds in
    its bin is taken out of it, with the locks it had, rather than refused: the peer
    holds it again (restored, or never binned there)."""

    soft: bool = False


class Manifests:
    def __init__(
        self, meta: Metadata, stores: BlobStores, policies: ManifestPolicies | None = None
    ) -> None:
        self._meta = meta
        self._stores = stores
        self.policies = policies if policies is not None else ManifestPolicies()

    def get(self, registry: RegistryRecord, repo: str, reference: str) -> ManifestRecord:
        """One query or a cache hit: the read locks come with the manifest."""
        by_digest = is_digest(reference)
        if by_digest:
            record = self._meta.manifest_by_digest(registry.id, repo, reference)
        else:
            record = self._meta.manifest_by_tag(registry.id, repo, reference)
        if record is None:
            check_repository_name(repo)
            # A reference no manifest can be stored under is not a bad pull: it names
            # none (404, as Distribution answers); only a push under it is invalid.
            raise ManifestUnknown(
                None if is_reference(reference) else f"{reference!r} is neither a tag nor a digest",
                detail={"name": repo, "reference": reference},
            )
        locks.check_pull(repo, None if by_digest else reference, record.digest, record.read)
        for policy in self.policies.pulls:
            policy.check_pull(registry, repo, reference, record)
        return record

    async def put_in_turn(
        self,
        registry: RegistryRecord,
        repo: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        before_tag: TagGuard | None = None,
        replicated: Replicated | None = None,
    ) -> PushResult:
        """`put` for the registry API's manifest PUT: after waiting, without holding up
        the event loop, for the writers' turn (SQLite's queue; at once elsewhere)."""
        async with self._meta.writers_turn():
            return self.put(
                registry,
                repo,
                reference,
                body,
                content_type,
                before_tag=before_tag,
                replicated=replicated,
            )

    def put(
        self,
        registry: RegistryRecord,
        repo: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        move_tag: bool = True,
        before_tag: TagGuard | None = None,
        replicated: Replicated | None = None,
        tx: Transaction | None = None,
    ) -> PushResult:
        """Store a manifest, by digest or under a tag. With `move_tag` False, a tag that
        names another manifest is refused (`TagExists`) rather than moved (import's
        default), checked in the same transaction as the push. `before_tag` runs in that
        transaction just before the tag is set (geo-replication's conflict rule, which
        refuses by raising and records what it decided); `replicated`: a peer's write.
        `tx`: a transaction of the caller's to write in (a peer's bundle of changes,
        applied together), else one of its own."""
        check_repository_name(repo)
        by_digest = is_digest(reference)
        if by_digest:
            parse_digest(reference)
        else:
            check_tag(reference)
        manifest = parse_manifest(body, content_type)
        digest = digest_bytes(body, algorithm_of(reference) if by_digest else "sha256")
        if by_digest and digest != reference:
            raise DigestInvalid(
                f"manifest digest is {digest}, not {reference}", detail={"digest": reference}
            )
        for policy in self.policies.pushes:
            policy.check_push(registry, repo, reference, digest, manifest)
        held = any(hold.holds_push(registry, repo, digest) for hold in self.policies.holds)
        platform = _platform(self._stores.for_registry(registry.name), manifest)
        with nullcontext(tx) if tx is not None else self._meta.transaction() as tx:
            writes = AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if found is not None and replicated is None:
                locks.check_push(repo, found.locks)
            repo_id = tx.ensure_repository(registry.id, repo, touch=True)
            _check_references(tx, repo_id, manifest)
            content = _content(digest, manifest, platform, _image_size(tx, repo_id, manifest))
            created = tx.put_manifest(repo_id, content)
            binned = created and replicated is not None
            taken = RecycleBin(tx).take_manifest(registry.id, repo, digest) if binned else None
            if taken is not None:
                writes.set_locks(repo_id, asdict(taken.locks), digest=digest)
            if created and replicated is None and RecycleBin(tx).holds(registry.id, repo, digest):
                raise Denied(
                    f"{repo}@{digest} is soft-deleted: restore it (POST "
                    f"/acr/v1/_deleted/{repo}/_manifests/{digest}) rather than push it again",
                    detail={"name": repo, "digest": digest},
                )
            moved = False
            if not by_digest:
                if before_tag is not None:
                    before_tag(tx)
                previous = tx.set_tag(repo_id, reference, digest)
                moved = previous != digest
                if previous is not None and moved and not move_tag:
                    raise TagExists(
                        f"{repo}:{reference} names {previous}; force the import to move it",
                        detail={"name": repo, "tag": reference, "digest": previous},
                    )
                if previous is not None and moved and replicated is None:
                    # Checked after the move, which the refusal rolls back: the lock
                    # matters only when the tag really moves (a re-push is no change).
                    tag_locks = writes.tag_locks(repo_id, reference)
                    assert tag_locks is not None
                    locks.check_tag_move(repo, reference, tag_locks)
            if created or moved:
                pushed = _pushed(registry, repo, digest, manifest, by_digest, reference, held)
                tx.emit(*pushed.to_row())
        return PushResult(digest, manifest.subject.digest if manifest.subject else None)

    def delete(self, registry: RegistryRecord, repo: str, reference: str) -> None:
        """`/v2` DELETE: by digest, the manifest and every tag on it; by tag, the tag."""
        if is_digest(reference):
            self.delete_manifest(registry, repo, reference)
        else:
            self.untag(registry, repo, reference)

    def delete_manifest(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        replicated: Replicated | None = None,
    ) -> None:
        """The manifest and every tag on it, unless a lock protects any of them."""
        check_repository_name(repo)
        parse_digest(digest)
        with self._meta.transaction() as tx:
            writes = AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            content = None if found is None else writes.content_locks(found.id, digest)
            if found is None or content is None or digest not in content.manifests:
                raise ManifestUnknown(detail={"name": repo, "reference": digest})
            if replicated is None:
                locks.check_manifest_delete(
                    repo, found.locks, digest, content.manifests[digest], content.tags
                )
            _remove_manifest(tx, registry, repo, found.id, digest, replicated)

    def delete_dangling(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        due: Callable[[Policies, datetime | None], bool] | None = None,
    ) -> bool:
        """The retention policy's and purge's delete: the manifest only if it is still
        dangling (no tag, no parent index, no subject in the repository: see
        `metadata.lifecycle`) and, if `due` is given, `due(policies, untagged_at)` says
        so, both checked in the delete's transaction (a re-tag just before wins). The
        repository goes with its last manifest. Locks refuse as for any delete
        (`Locked`); False if the manifest no longer qualifies."""
        with self._meta.transaction() as tx:
            writes, lifecycle = AttributeWrites(tx), LifecycleWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if found is None:
                return False
            dangling, untagged_at = lifecycle.dangling_since(found.id, digest)
            if not dangling or (
                due is not None and not due(lifecycle.policies(registry.id), untagged_at)
            ):
                return False
            content = writes.content_locks(found.id, digest)
            locks.check_manifest_delete(
                repo, found.locks, digest, content.manifests[digest], content.tags
            )
            _remove_manifest(tx, registry, repo, found.id, digest)
            if not lifecycle.has_manifests(found.id):
                tx.delete_repository(found.id)
        return True

    def untag(
        self,
        registry: RegistryRecord,
        repo: str,
        tag: str,
        before_tag: TagGuard | None = None,
        replicated: Replicated | None = None,
    ) -> None:
        """The tag only; its manifest stays. `before_tag` and `replicated` as for `put`."""
        check_repository_name(repo)
        check_tag(tag)
        with self._meta.transaction() as tx:
            writes = AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            tag_locks = None if found is None else writes.tag_locks(found.id, tag)
            if found is None or tag_locks is None:
                raise ManifestUnknown(detail={"name": repo, "reference": tag})
            if replicated is None:
                locks.check_tag_delete(repo, found.locks, tag, tag_locks)
            if before_tag is not None:
                before_tag(tx)
            recycle_bin = _soft_delete(tx, registry, replicated)
            if recycle_bin is not None:
                recycle_bin.keep_tags(registry.id, repo, found.id, name=tag)
            digest = tx.delete_tag(found.id, tag)
            untagged = events.Untagged(
                registry_id=registry.id,
                repository=repo,
                digest=digest,
                tag=tag,
                origin=request_origin(),
            )
            tx.emit(*untagged.to_row())

    def delete_repository(
        self, registry: RegistryRecord, repo: str, replicated: Replicated | None = None
    ) -> RepositoryDeleted:
        """The repository with all its manifests and tags, unless a lock protects any."""
        check_repository_name(repo)
        with self._meta.transaction() as tx:
            writes = AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if found is None:
                raise NameUnknown(detail={"name": repo})
            content = writes.content_locks(found.id)
            if replicated is None:
                locks.check_repository_delete(repo, found.locks, content.tags, content.manifests)
            recycle_bin = _soft_delete(tx, registry, replicated)
            if recycle_bin is not None:
                recycle_bin.keep_tags(registry.id, repo, found.id)
                for digest in content.manifests:
                    recycle_bin.keep_manifest(registry.id, repo, found.id, digest)
            types = tx.manifest_types(found.id)
            digests, tags = tx.delete_repository(found.id)
            deleted = events.RepositoryDeleted(
                registry_id=registry.id,
                repository=repo,
                manifests=tuple(
                    events.DeletedManifest(d, *types.get(d, (None, None))) for d in digests
                ),
                tags=tuple(tags),
                origin=request_origin(),
            )
            tx.emit(*deleted.to_row())
        return RepositoryDeleted(digests, tags)


def _soft_delete(
    tx: Transaction, registry: RegistryRecord, replicated: Replicated | None = None
) -> RecycleBin | None:
    """The recycle bin, if the registry's soft delete policy is on (for a peer's change:
    if it went to the bin there): deletes move there."""
    if replicated is not None:
        return RecycleBin(tx) if replicated.soft else None
    on = LifecycleWrites(tx).policies(registry.id).soft_delete.enabled
    return RecycleBin(tx) if on else None


def _remove_manifest(
    tx: Transaction,
    registry: RegistryRecord,
    repo: str,
    repo_id: int,
    digest: str,
    replicated: Replicated | None = None,
) -> None:
    """Delete a manifest with its tags (into the recycle bin under soft delete), and
    write the event; the caller checked locks."""
    recycle_bin = _soft_delete(tx, registry, replicated)
    if recycle_bin is not None:
        recycle_bin.keep_tags(registry.id, repo, repo_id, digest=digest)
        recycle_bin.keep_manifest(registry.id, repo, repo_id, digest)
    media_type, config_media_type = tx.manifest_types(repo_id, [digest]).get(digest, (None, None))
    tags = tx.delete_manifest(repo_id, digest)
    deleted = events.ManifestDeleted(
        registry_id=registry.id,
        repository=repo,
        digest=digest,
        tags=tuple(tags),
        media_type=media_type,
        config_media_type=config_media_type,
        origin=request_origin(),
    )
    tx.emit(*deleted.to_row())


def _check_references(tx: Transaction, repo_id: int, manifest: Manifest) -> None:
    _require(manifest.blobs, tx.linked_blob_sizes(repo_id, (d.digest for d in manifest.blobs)))
    _require(manifest.children, tx.manifest_sizes(repo_id, (d.digest for d in manifest.children)))


def _require(wanted: tuple[Descriptor, ...], present: dict[str, int]) -> None:
    for descriptor in wanted:
        size = present.get(descriptor.digest)
        if size is None:
            raise ManifestBlobUnknown(
                f"{descriptor.digest} is not in the repository",
                detail={"digest": descriptor.digest},
            )
        if size != descriptor.size:
            raise ManifestInvalid(
                f"{descriptor.digest} has size {size}, the manifest says {descriptor.size}",
                detail={"digest": descriptor.digest},
            )


def _platform(store: BlobStore, manifest: Manifest) -> tuple[str | None, str | None]:
    """(architecture, os) from an image's config blob, when it is small JSON that has
    them; read before the transaction (a missing config fails the reference check)."""
    if manifest.media_type not in IMAGE_TYPES or manifest.blobs[0].size > MAX_CONFIG_READ:
        return None, None
    try:
        with store.open(manifest.blobs[0].digest) as source:
            config = orjson.loads(source.read(MAX_CONFIG_READ + 1))
    except (OSError, KeyError, orjson.JSONDecodeError):
        return None, None
    if not isinstance(config, dict):
        return None, None
    return _word(config.get("architecture")), _word(config.get("os"))


def _word(value: object) -> str | None:
    """A platform value as stored (the columns hold 32 characters)."""
    return value if isinstance(value, str) and 0 < len(value) <= 32 else None


def _image_size(tx: Transaction, repo_id: int, manifest: Manifest) -> int:
    """ACR's imageSize: config plus layers for an image; for an index, the sum of its
    children's image sizes."""
    if manifest.children:
        return sum(tx.image_sizes(repo_id, (d.digest for d in manifest.children)).values())
    return sum(d.size for d in manifest.blobs)


def _content(
    digest: str, manifest: Manifest, platform: tuple[str | None, str | None], image_size: int
) -> ManifestContent:
    return ManifestContent(
        digest=digest,
        media_type=manifest.media_type,
        body=manifest.body,
        artifact_type=manifest.artifact_type,
        subject_digest=manifest.subject.digest if manifest.subject else None,
        annotations=orjson.dumps(manifest.annotations).decode() if manifest.annotations else None,
        blob_digests=tuple(d.digest for d in manifest.blobs),
        child_digests=tuple(d.digest for d in manifest.children),
        config_media_type=manifest.config_media_type,
        architecture=platform[0],
        os=platform[1],
        image_size=image_size,
    )


def _pushed(
    registry: RegistryRecord,
    repo: str,
    digest: str,
    manifest: Manifest,
    by_digest: bool,
    reference: str,
    held: bool,
) -> events.ManifestPushed:
    """A push's event: what was pushed (a chart is told by its config's media type),
    under which tag, the request that pushed it, and whether a push hold held it."""
    fields = {
        "registry_id": registry.id,
        "repository": repo,
        "digest": digest,
        "size": len(manifest.body),
        "media_type": manifest.media_type,
        "config_media_type": manifest.config_media_type,
        "origin": request_origin(),
        "held": held,
    }
    if by_digest:
        return events.ManifestPushed(**fields)
    return events.TagMoved(tag=reference, **fields)
