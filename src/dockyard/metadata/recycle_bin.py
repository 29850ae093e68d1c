"""Queries of the soft delete policy's recycle bin: moving a deleted manifest (body,
attributes, locks, references) and deleted tags (with their locks) into `deleted_manifests`,
`deleted_manifest_references` and `deleted_tags`, in the transaction of the delete;
listing them; taking them back on restore; dropping expired ones. Rows are keyed by
registry and repository name, so a deleted repository's content stays restorable.
The rules (when, what a restore needs) are in `lifecycle.soft_delete`; garbage collection
keeps every blob a binned manifest references (`metadata.garbage`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, insert, literal, select, union

from dockyard.metadata import schema as t
from dockyard.metadata.attributes import LOCK_NAMES, lock_columns, locks_of
from dockyard.metadata.records import Locks, ManifestContent
from dockyard.metadata.store import Metadata, Transaction

_m, _mr, _g = t.manifests, t.manifest_references, t.tags
_dm, _dmr, _dg = t.deleted_manifests, t.deleted_manifest_references, t.deleted_tags
_COPIED = (
    "digest",
    "media_type",
    "artifact_type",
    "subject_digest",
    "annotations",
    "size",
    "body",
    "config_media_type",
    "architecture",
    "os",
    "image_size",
    "created_at",
    *LOCK_NAMES,
)


@dataclass(frozen=True)
class DeletedManifest:
    digest: str
    media_type: str
    image_size: int
    architecture: str | None
    os: str | None
    config_media_type: str | None
    created_at: datetime
    deleted_at: datetime
    tags: tuple[str, ...]  # deleted tags that named it


@dataclass(frozen=True)
class BinnedManifest:
    """A manifest taken out of the bin: what `put_manifest` stores, and the locks it had."""

    content: ManifestContent
    locks: Locks


@dataclass(frozen=True)
class DeletedTag:
    name: str
    digest: str
    created_at: datetime
    deleted_at: datetime


def _in(registry_id: int, repo: str, table: object = _dm) -> object:
    return and_(table.c.registry_id == registry_id, table.c.repository == repo)  # type: ignore[attr-defined]


def deleted_repositories(meta: Metadata, registry_id: int, last: str | None, n: int) -> list[str]:
    """Names of repositories with something in the bin, after `last`, in order."""
    names = union(
        select(_dm.c.repository.label("name")).where(_dm.c.registry_id == registry_id),
        select(_dg.c.repository.label("name")).where(_dg.c.registry_id == registry_id),
    ).subquery()
    query = select(names.c.name).order_by(names.c.name).limit(n)
    if last:
        query = query.where(names.c.name > last)
    with meta.connection() as conn:
        return list(conn.execute(query).scalars())


def deleted_manifests(meta: Metadata, registry_id: int, repo: str) -> list[DeletedManifest]:
    with meta.connection() as conn:
        tags: dict[str, list[str]] = {}
        for name, digest in conn.execute(
            select(_dg.c.name, _dg.c.digest).where(_in(registry_id, repo, _dg)).order_by(_dg.c.name)
        ):
            tags.setdefault(digest, []).append(name)
        rows = conn.execute(
            select(
                _dm.c.digest,
                _dm.c.media_type,
                _dm.c.image_size,
                _dm.c.architecture,
                _dm.c.os,
                _dm.c.config_media_type,
                _dm.c.created_at,
                _dm.c.deleted_at,
            )
            .where(_in(registry_id, repo))
            .order_by(_dm.c.digest)
        )
        return [DeletedManifest(*row, tags=tuple(tags.get(row[0], ()))) for row in rows]


def deleted_tags(meta: Metadata, registry_id: int, repo: str) -> list[DeletedTag]:
    with meta.connection() as conn:
        rows = conn.execute(
            select(_dg.c.name, _dg.c.digest, _dg.c.created_at, _dg.c.deleted_at)
            .where(_in(registry_id, repo, _dg))
            .order_by(_dg.c.name, _dg.c.deleted_at)
        )
        return [DeletedTag(*row) for row in rows]


class RecycleBin:
    """The bin's writes inside one `Metadata.transaction()`."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self.now = tx.now

    def keep_manifest(self, registry_id: int, repo: str, repository_id: int, digest: str) -> None:
        """Copy a manifest about to be deleted, with its references, into the bin."""
        source = select(
            literal(registry_id),
            literal(repo),
            *(_m.c[name] for name in _COPIED),
            literal(self.now, t.UTCDateTime()),
        ).where(_m.c.repository_id == repository_id, _m.c.digest == digest)
        self._conn.execute(
            insert(_dm).from_select(["registry_id", "repository", *_COPIED, "deleted_at"], source)
        )
        binned = self._conn.execute(
            select(_dm.c.id).where(_in(registry_id, repo), _dm.c.digest == digest)
        ).scalar_one()
        manifest_id = select(_m.c.id).where(
            _m.c.repository_id == repository_id, _m.c.digest == digest
        )
        self._conn.execute(
            insert(_dmr).from_select(
                ["deleted_manifest_id", "digest", "is_manifest"],
                select(literal(binned), _mr.c.digest, _mr.c.is_manifest).where(
                    _mr.c.manifest_id == manifest_id.scalar_subquery()
                ),
            )
        )

    def keep_tags(
        self,
        registry_id: int,
        repo: str,
        repository_id: int,
        *,
        name: str | None = None,
        digest: str | None = None,
    ) -> None:
        """Copy tags about to be deleted into the bin: the one named `name`, those on
        `digest`, or (neither given) all of the repository's."""
        source = select(
            literal(registry_id),
            literal(repo),
            _g.c.name,
            _g.c.digest,
            _g.c.created_at,
            literal(self.now, t.UTCDateTime()),
            *lock_columns(_g),
        ).where(_g.c.repository_id == repository_id)
        if name is not None:
            source = source.where(_g.c.name == name)
        if digest is not None:
            source = source.where(_g.c.digest == digest)
        self._conn.execute(
            insert(_dg).from_select(
                [
                    "registry_id",
                    "repository",
                    "name",
                    "digest",
                    "created_at",
                    "deleted_at",
                    *LOCK_NAMES,
                ],
                source,
            )
        )

    def holds(self, registry_id: int, repo: str, digest: str) -> bool:
        return (
            self._conn.execute(
                select(_dm.c.id).where(_in(registry_id, repo), _dm.c.digest == digest)
            ).first()
            is not None
        )

    def holds_tag(self, registry_id: int, repo: str, name: str, digest: str) -> bool:
        return (
            self._conn.execute(
                select(_dg.c.id).where(
                    _in(registry_id, repo, _dg), _dg.c.name == name, _dg.c.digest == digest
                )
            ).first()
            is not None
        )

    def take_manifest(self, registry_id: int, repo: str, digest: str) -> BinnedManifest | None:
        """Remove a manifest from the bin and return it as `put_manifest` stores it, with
        the locks to set on it again."""
        row = (
            self._conn.execute(
                select(_dm.c.id, *(_dm.c[name] for name in _COPIED)).where(
                    _in(registry_id, repo), _dm.c.digest == digest
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return None
        references = self._conn.execute(
            select(_dmr.c.digest, _dmr.c.is_manifest)
            .where(_dmr.c.deleted_manifest_id == row["id"])
            .order_by(_dmr.c.digest)
        ).all()
        self._conn.execute(delete(_dm).where(_dm.c.id == row["id"]))
        content = ManifestContent(
            digest=row["digest"],
            media_type=row["media_type"],
            body=row["body"],
            artifact_type=row["artifact_type"],
            subject_digest=row["subject_digest"],
            annotations=row["annotations"],
            blob_digests=tuple(d for d, is_manifest in references if not is_manifest),
            child_digests=tuple(d for d, is_manifest in references if is_manifest),
            config_media_type=row["config_media_type"],
            architecture=row["architecture"],
            os=row["os"],
            image_size=row["image_size"],
        )
        return BinnedManifest(content, locks_of([row[name] for name in LOCK_NAMES]))

    def take_tag(self, registry_id: int, repo: str, name: str, digest: str) -> Locks | None:
        """Remove the tag `name` on `digest` from the bin (every time it was deleted) and
        return the locks it had when last binned, or None if the bin holds no such tag."""
        where = and_(_in(registry_id, repo, _dg), _dg.c.name == name, _dg.c.digest == digest)
        row = self._conn.execute(
            select(*lock_columns(_dg)).where(where).order_by(_dg.c.id.desc()).limit(1)
        ).first()
        self._conn.execute(delete(_dg).where(where))
        return None if row is None else locks_of(row)

    def expire(self, registry_id: int, before: datetime) -> int:
        """Drop what was deleted before `before`; how many manifests and tags went."""
        removed = 0
        for table in (_dm, _dg):
            result = self._conn.execute(
                delete(table).where(table.c.registry_id == registry_id, table.c.deleted_at < before)
            )
            removed += result.rowcount
        return removed
