"""Queries of garbage collection: which blob links no manifest references, which blobs no
repository links. The rules (grace period, batches, when bytes go) are in
`dockyard.core.garbage`.

A link is garbage when no manifest of its repository references its digest and it was
made (or last lost a reference) before the cutoff; a blob is garbage when no repository
of its registry links it and no manifest in its registry's recycle bin (soft delete)
references it, so a restore finds every blob it needs (and links it again). Every
selection is keyset-paginated, so a run over many blobs reads each row once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_b, _l, _r, _m, _mr = t.blobs, t.blob_links, t.repositories, t.manifests, t.manifest_references

# A manifest of the link's repository references the link's digest.
_REFERENCED = exists().where(
    _mr.c.digest == _l.c.digest,
    _m.c.id == _mr.c.manifest_id,
    _m.c.repository_id == _l.c.repository_id,
)
_GARBAGE_LINK = and_(_l.c.created_at < bindparam("cutoff"), ~_REFERENCED)
_IN_REGISTRY = and_(_r.c.id == _l.c.repository_id, _r.c.registry_id == bindparam("registry_id"))
_dm, _dmr = t.deleted_manifests, t.deleted_manifest_references
# A soft-deleted manifest of the blob's registry references the blob.
_BINNED = exists().where(
    _dmr.c.digest == _b.c.digest,
    _dm.c.id == _dmr.c.deleted_manifest_id,
    _dm.c.registry_id == _b.c.registry_id,
)


def _links_of_blob(*where: object) -> object:
    """Some link of the blob's registry to the blob's digest (and `where`) exists."""
    return exists().where(
        _l.c.digest == _b.c.digest,
        _r.c.id == _l.c.repository_id,
        _r.c.registry_id == _b.c.registry_id,
        *where,
    )


# Garbage links are found one repository at a time: a page of one repository's links
# seeks the primary key and stops at its limit, where a page over the whole registry
# (ordered by repository and digest) was planned by SQLite as a scan and sort of every
# link of the registry per page, quadratic over a run.
# `registry_id + 0` keeps the planner off the (registry_id, name) index, which is in name
# order: the next repository is then a seek on the primary key, and a run walks the
# repositories once.
_NEXT_REPOSITORY = (
    select(_r.c.id)
    .where((_r.c.registry_id + 0) == bindparam("registry_id"), _r.c.id > bindparam("after"))
    .order_by(_r.c.id)
    .limit(1)
)
_GARBAGE_LINKS_PAGE = (
    select(_l.c.digest)
    .where(
        _l.c.repository_id == bindparam("repository_id"),
        _l.c.digest > bindparam("after_digest"),
        _GARBAGE_LINK,
    )
    .order_by(_l.c.digest)
    .limit(bindparam("n"))
)
_DELETE_LINK = delete(_l).where(
    _l.c.repository_id == bindparam("repository_id"), _l.c.digest == bindparam("link_digest")
)
_UNLINKED_BLOBS_PAGE = (
    select(_b.c.digest, _b.c.size)
    .where(
        _b.c.registry_id == bindparam("registry_id"),
        _b.c.digest > bindparam("after"),
        ~_links_of_blob(),
        ~_BINNED,
    )
    .order_by(_b.c.digest)
    .limit(bindparam("n"))
)
_DELETE_BLOB = delete(_b).where(
    _b.c.registry_id == bindparam("registry_id"), _b.c.digest == bindparam("blob_digest")
)
# What a run would free: garbage links, and blobs with no link that is not garbage.
_COUNT_GARBAGE_LINKS = (
    select(func.count()).select_from(_l.join(_r, _IN_REGISTRY)).where(_GARBAGE_LINK)
)
_SUM_GARBAGE_BLOBS = select(func.count(), func.coalesce(func.sum(_b.c.size), 0)).where(
    _b.c.registry_id == bindparam("registry_id"),
    ~_links_of_blob(or_(_l.c.created_at >= bindparam("cutoff"), _REFERENCED)),
    ~_BINNED,
)


@dataclass(frozen=True)
class LinkKey:
    repository_id: int
    digest: str


@dataclass(frozen=True)
class Garbage:
    """What a garbage collection of one registry would remove now."""

    links: int
    blobs: int
    bytes: int


def garbage(meta: Metadata, registry_id: int, cutoff: datetime) -> Garbage:
    """What a run with this cutoff would remove (a dry run): read only, no lock."""
    params = {"registry_id": registry_id, "cutoff": cutoff}
    with meta.connection() as conn:
        links = conn.execute(_COUNT_GARBAGE_LINKS, params).scalar_one()
        blobs, size = conn.execute(_SUM_GARBAGE_BLOBS, params).one()
    return Garbage(links, blobs, int(size))


class GarbageWrites:
    """Selections and deletes made inside one write transaction, so that what is found
    garbage stays garbage until it is gone: no writer can link or reference it between."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._conn = tx.conn

    def garbage_links(
        self, registry_id: int, cutoff: datetime, after: LinkKey | None, limit: int
    ) -> list[LinkKey]:
        """Up to `limit` garbage links after `after`, in key order."""
        found: list[LinkKey] = []
        repository_id: int | None = self._next_repository(registry_id, 0)
        digest = ""
        if after is not None:
            repository_id, digest = after.repository_id, after.digest
        while repository_id is not None and len(found) < limit:
            rows = self._conn.execute(
                _GARBAGE_LINKS_PAGE,
                {
                    "repository_id": repository_id,
                    "after_digest": digest,
                    "cutoff": cutoff,
                    "n": limit - len(found),
                },
            )
            found += [LinkKey(repository_id, link_digest) for (link_digest,) in rows]
            if len(found) < limit:  # this repository has no more: the next one
                repository_id, digest = self._next_repository(registry_id, repository_id), ""
        return found

    def _next_repository(self, registry_id: int, after: int) -> int | None:
        return self._conn.execute(
            _NEXT_REPOSITORY, {"registry_id": registry_id, "after": after}
        ).scalar_one_or_none()

    def delete_links(self, links: list[LinkKey]) -> None:
        if links:
            self._conn.execute(
                _DELETE_LINK,
                [
                    {"repository_id": link.repository_id, "link_digest": link.digest}
                    for link in links
                ],
            )

    def unlinked_blobs(self, registry_id: int, after: str, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` (digest, size) of blobs no repository links, digests after
        `after`, in order."""
        rows = self._conn.execute(
            _UNLINKED_BLOBS_PAGE, {"registry_id": registry_id, "after": after, "n": limit}
        )
        return [(digest, size) for digest, size in rows]

    def delete_blobs(self, registry_id: int, digests: list[str]) -> None:
        """Delete these blob rows, and their sizes from the registry's storage use."""
        if digests:
            freed = self._conn.execute(
                select(func.coalesce(func.sum(_b.c.size), 0)).where(
                    _b.c.registry_id == registry_id, _b.c.digest.in_(digests)
                )
            ).scalar_one()
            self._tx.change_storage_used(registry_id, -int(freed))
            self._conn.execute(
                _DELETE_BLOB,
                [{"registry_id": registry_id, "blob_digest": digest} for digest in digests],
            )
