"""The soft delete policy (ACR's, preview): per registry, on or off, and a retention of
1-90 days (default 7). While it is on, deleting a manifest, a tag or a repository moves
what goes into the recycle bin (`metadata.recycle_bin`), in the delete's transaction;
the bin can be listed and restored from (`/acr/v1/_deleted/...`) until its items expire
(deleted at + the days in force now: changing 7 to 14 extends items already deleted).
The background worker drops expired items; garbage collection keeps every blob a binned
manifest references, so a restore is byte-identical.

As on ACR: it cannot be on with the retention policy; pushing a manifest whose digest is
in the bin is refused (restore it instead); a restore brings back one manifest and at
most one tag, with the locks (changeable attributes) they had when deleted, `force`
moving a tag that names another manifest (that tag is then soft-deleted itself).
Restoring an index needs its children restored first (a manifest never points at
missing content), and restoring a subject does not restore its referrers. Items stay in
the bin, and expire, after the policy is turned off."""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import timedelta

from dockyard.common.clock import Clock
from dockyard.common.errors import Conflict, ManifestBlobUnknown, ManifestUnknown, RequestInvalid
from dockyard.common.names import check_repository_name, check_tag
from dockyard.core import events, locks
from dockyard.core.digests import parse_digest
from dockyard.core.events import request_origin
from dockyard.core.listings import Page, page_of
from dockyard.metadata.attributes import AttributeWrites
from dockyard.metadata.lifecycle import LifecycleWrites, Policies, Policy
from dockyard.metadata.lifecycle import policies as read_policies
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.recycle_bin import (
    DeletedManifest,
    DeletedTag,
    RecycleBin,
    deleted_manifests,
    deleted_repositories,
    deleted_tags,
)
from dockyard.metadata.store import Metadata, Transaction

MIN_DAYS, MAX_DAYS = 1, 90


class SoftDelete:
    def __init__(self, meta: Metadata, clock: Clock) -> None:
        self._meta = meta
        self._clock = clock

    # -- the policy ---------------------------------------------------------------------

    def policy(self, registry: RegistryRecord) -> Policy:
        return read_policies(self._meta, registry.id).soft_delete

    def update(
        self, registry: RegistryRecord, enabled: bool | None = None, days: int | None = None
    ) -> Policy:
        if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
            raise RequestInvalid(
                f"soft delete retention days must be {MIN_DAYS} to {MAX_DAYS}, not {days}"
            )
        with self._meta.transaction() as tx:
            writes = LifecycleWrites(tx)
            current = writes.policies(registry.id)
            policy = current.soft_delete
            if enabled and current.retention.enabled:
                raise RequestInvalid(
                    "the soft delete policy cannot be enabled while the retention policy is "
                    "on; disable retention first"
                )
            if enabled is not None and enabled != policy.enabled:
                policy = replace(policy, enabled_at=tx.now if enabled else None)
            if days is not None:
                policy = replace(policy, days=days)
            writes.set_policies(registry.id, Policies(current.retention, policy))
        return policy

    # -- the bin ------------------------------------------------------------------------

    def repositories(self, registry: RegistryRecord, last: str | None, n: int) -> Page[str]:
        found = deleted_repositories(self._meta, registry.id, last, n + 1)
        return page_of(found, n, lambda name: name)

    def manifests(self, registry: RegistryRecord, repo: str) -> list[DeletedManifest]:
        check_repository_name(repo)
        return deleted_manifests(self._meta, registry.id, repo)

    def tags(self, registry: RegistryRecord, repo: str) -> list[DeletedTag]:
        check_repository_name(repo)
        return deleted_tags(self._meta, registry.id, repo)

    def restore(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        tag: str | None = None,
        force: bool = False,
    ) -> None:
        """Bring back a soft-deleted manifest (with `tag`, if given), or a soft-deleted
        tag of a manifest that is there. Locks refuse it as they refuse a push."""
        check_repository_name(repo)
        parse_digest(digest)
        if tag is not None:
            check_tag(tag)
        with self._meta.transaction() as tx:
            recycle_bin, writes = RecycleBin(tx), AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if found is not None:
                locks.check_push(repo, found.locks)
            binned = recycle_bin.take_manifest(registry.id, repo, digest)
            if binned is None and not (
                found is not None
                and tag is not None
                and tx.manifest_sizes(found.id, [digest])
                and recycle_bin.holds_tag(registry.id, repo, tag, digest)
            ):
                raise ManifestUnknown(
                    f"{repo}@{digest} is not in the recycle bin"
                    + ("" if tag is None else f" with tag {tag}"),
                    detail={"name": repo, "digest": digest},
                )
            repo_id = tx.ensure_repository(registry.id, repo, touch=True)
            if binned is not None:
                content = binned.content
                missing = set(content.child_digests) - set(
                    tx.manifest_sizes(repo_id, content.child_digests)
                )
                if missing:
                    raise ManifestBlobUnknown(
                        f"restore the index's child manifests first: {', '.join(sorted(missing))}",
                        detail={"digests": sorted(missing)},
                    )
                for blob in content.blob_digests:
                    # Garbage collection kept the blob for the bin: link it again.
                    tx.link_blob(repo_id, blob)
                tx.put_manifest(repo_id, content)
                writes.set_locks(repo_id, asdict(binned.locks), digest=digest)
            if tag is not None:
                self._restore_tag(tx, registry, repo, repo_id, tag, digest, force)
            media_type, config_media_type = tx.manifest_types(repo_id, [digest]).get(
                digest, (None, None)
            )
            fields = {
                "registry_id": registry.id,
                "repository": repo,
                "digest": digest,
                "size": tx.manifest_sizes(repo_id, [digest])[digest],
                "media_type": media_type,
                "config_media_type": config_media_type,
                "origin": request_origin(),
                "restored": True,
            }
            restored = (
                events.ManifestPushed(**fields)
                if tag is None
                else events.TagMoved(tag=tag, **fields)
            )
            tx.emit(*restored.to_row())

    @staticmethod
    def _restore_tag(
        tx: Transaction,
        registry: RegistryRecord,
        repo: str,
        repo_id: int,
        tag: str,
        digest: str,
        force: bool,
    ) -> None:
        recycle_bin, writes = RecycleBin(tx), AttributeWrites(tx)
        tag_locks = writes.tag_locks(repo_id, tag)
        if tag_locks is not None:  # the tag this restore may overwrite is soft-deleted
            recycle_bin.keep_tags(registry.id, repo, repo_id, name=tag)
        previous = tx.set_tag(repo_id, tag, digest)
        if previous is not None and previous != digest:
            if not force:
                raise Conflict(
                    f"{repo}:{tag} names {previous}; restore with force=true to move it "
                    "(the tag it replaces is soft-deleted)",
                    detail={"name": repo, "tag": tag, "digest": previous},
                )
            assert tag_locks is not None
            locks.check_tag_move(repo, tag, tag_locks)
        # The restored tag leaves the bin (with a copy just kept, if it named this
        # manifest already) and gets its locks back; a tag that named this manifest
        # already keeps its own.
        binned = recycle_bin.take_tag(registry.id, repo, tag, digest)
        if binned is not None and previous != digest:
            writes.set_locks(repo_id, asdict(binned), tag=tag)

    def expire(self, registry: RegistryRecord) -> int:
        """Drop what has been in the bin longer than the policy's days (its current
        value, on or off); garbage collection then frees the blobs."""
        days = self.policy(registry).days
        with self._meta.transaction() as tx:
            return RecycleBin(tx).expire(registry.id, self._clock() - timedelta(days=days))
