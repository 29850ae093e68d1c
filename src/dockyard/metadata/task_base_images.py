"""Queries of the base images tasks' builds started from (`task_base_images`). Which
images those are, and what a change of one starts, is
`dockyard.tasks.base_image_triggers`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_b = t.task_base_images
_t = t.tasks


@dataclass(frozen=True)
class BaseImage:
    """What a build started from: `registry_id` this server's registry holding it, or
    None for an image elsewhere (`host`)."""

    kind: str  # RunTime or BuildTime
    registry_id: int | None
    host: str
    repository: str
    tag: str
    digest: str | None


@dataclass(frozen=True)
class Dependency:
    """A task's base image as stored, with the task it belongs to."""

    id: int
    task_registry_id: int
    task_name: str
    image: BaseImage
    checked_at: datetime | None


_DEPENDENCIES = select(
    _b.c.id,
    _t.c.registry_id,
    _t.c.name,
    _b.c.kind,
    _b.c.registry_id,
    _b.c.host,
    _b.c.repository,
    _b.c.tag,
    _b.c.digest,
    _b.c.checked_at,
).join(_t, _t.c.id == _b.c.task_id)


def _dependency(row: Any) -> Dependency:
    return Dependency(row[0], row[1], row[2], BaseImage(*row[3:9]), row[9])


def task_dependencies(meta: Metadata, task_id: int) -> list[Dependency]:
    with meta.connection() as conn:
        rows = conn.execute(_DEPENDENCIES.where(_b.c.task_id == task_id).order_by(_b.c.id))
        return [_dependency(row) for row in rows]


def tag_dependents(meta: Metadata, registry_id: int, repository: str, tag: str) -> list[Dependency]:
    """The tasks built on `repository:tag` of this server's registry `registry_id`."""
    query = _DEPENDENCIES.where(
        _b.c.registry_id == registry_id, _b.c.repository == repository, _b.c.tag == tag
    )
    with meta.connection() as conn:
        return [_dependency(row) for row in conn.execute(query)]


def due_polls(meta: Metadata, checked_before: datetime) -> list[Dependency]:
    """Base images elsewhere not looked at since `checked_before` (or never)."""
    query = _DEPENDENCIES.where(
        _b.c.registry_id.is_(None),
        or_(_b.c.checked_at.is_(None), _b.c.checked_at < checked_before),
    ).order_by(_b.c.host, _b.c.repository, _b.c.tag)
    with meta.connection() as conn:
        return [_dependency(row) for row in conn.execute(query)]


class BaseImageWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def replace(self, task_id: int, images: list[BaseImage]) -> None:
        """The task's base images are `images`; an image elsewhere seen before keeps the
        digest and time of its last look (its first look is the poller's)."""
        kept = {
            (row.host, row.repository, row.tag): (row.digest, row.checked_at)
            for row in self._conn.execute(
                select(_b.c.host, _b.c.repository, _b.c.tag, _b.c.digest, _b.c.checked_at).where(
                    _b.c.task_id == task_id, _b.c.registry_id.is_(None)
                )
            )
        }
        self._conn.execute(delete(_b).where(_b.c.task_id == task_id))
        for image in images:
            digest, checked_at = image.digest, None
            if image.registry_id is None:
                digest, checked_at = kept.get(
                    (image.host, image.repository, image.tag), (None, None)
                )
            self._conn.execute(
                insert(_b).values(
                    task_id=task_id,
                    kind=image.kind,
                    registry_id=image.registry_id,
                    host=image.host,
                    repository=image.repository,
                    tag=image.tag,
                    digest=digest,
                    checked_at=checked_at,
                )
            )

    def move_on(self, dependency_id: int, seen: str | None, digest: str) -> bool:
        """The row now names `digest`, if it still named `seen`: False when another
        worker moved it first (that one starts the run)."""
        seen_clause = _b.c.digest.is_(None) if seen is None else _b.c.digest == seen
        done = self._conn.execute(
            update(_b)
            .where(and_(_b.c.id == dependency_id, seen_clause))
            .values(digest=digest, checked_at=self._now)
        )
        return done.rowcount == 1

    def checked(self, dependency_ids: list[int]) -> None:
        if dependency_ids:
            self._conn.execute(
                update(_b).where(_b.c.id.in_(dependency_ids)).values(checked_at=self._now)
            )
