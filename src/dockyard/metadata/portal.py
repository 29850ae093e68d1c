"""The portal's reads that `/acr/v1` has no query for: a page of a registry's
repositories found by a name prefix, sorted by name or last update, and the sizes of
the manifests a page of tags points at, and a registry's days (pushes and pulls, and
the bytes its stored blobs arrived with) for the usage charts.

Every listing is keyset-paginated (`after` the last row shown): a prefix is a range on
the unique (registry, name) index, never a scan of every repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata

_r, _g, _m = t.repositories, t.tags, t.manifests
_events, _blobs = t.repository_events, t.blobs
# What the charts count of the audit log: the successful pushes and pulls.
_COUNTED = ("Push", "Pull")


@dataclass(frozen=True)
class DayCounts:
    """A day's successful pushes and pulls (the audit log's repository events)."""

    day: date
    pushes: int
    pulls: int


@dataclass(frozen=True)
class RepositoryRow:
    name: str
    updated_at: datetime
    tag_count: int


def _prefix_end(prefix: str) -> str:
    """The first string after every string that starts with `prefix` (names are ASCII)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class PortalQueries:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def repositories(
        self, registry_id: int, prefix: str, by_time: bool, after: str | None, n: int
    ) -> list[RepositoryRow]:
        """Up to `n` listable repositories whose names start with `prefix`, by name or
        newest update first, after the repository named `after`."""
        tags = select(func.count()).where(_g.c.repository_id == _r.c.id).scalar_subquery()
        query = select(_r.c.name, _r.c.updated_at, tags).where(
            _r.c.registry_id == registry_id, _r.c.list_enabled
        )
        if prefix:
            query = query.where(_r.c.name >= prefix, _r.c.name < _prefix_end(prefix))
        if by_time:
            if after:
                before = _r.alias()
                last_time = (
                    select(before.c.updated_at)
                    .where(before.c.registry_id == registry_id, before.c.name == after)
                    .scalar_subquery()
                )
                query = query.where(
                    or_(
                        _r.c.updated_at < last_time,
                        and_(_r.c.updated_at == last_time, _r.c.name > after),
                    )
                )
            query = query.order_by(_r.c.updated_at.desc(), _r.c.name)
        else:
            if after:
                query = query.where(_r.c.name > after)
            query = query.order_by(_r.c.name)
        with self._meta.connection() as conn:
            rows = conn.execute(query.limit(n)).all()
        return [RepositoryRow(*row) for row in rows]

    def manifest_sizes(self, registry_id: int, repo: str, digests: Sequence[str]) -> dict[str, int]:
        """The image size of each of `digests` in the repository (one query per page)."""
        if not digests:
            return {}
        query = (
            select(_m.c.digest, _m.c.image_size)
            .select_from(_r.join(_m, _m.c.repository_id == _r.c.id))
            .where(
                _r.c.registry_id == registry_id,
                _r.c.name == repo,
                _m.c.digest.in_(sorted(set(digests))),
            )
        )
        with self._meta.connection() as conn:
            return {digest: size for digest, size in conn.execute(query)}

    def daily_operations(self, registry_id: int, since: datetime) -> list[DayCounts]:
        """Each day (UTC) from `since` on that had a successful push or pull, with how
        many of each: one aggregate over the audit log's (registry, time) index."""
        with self._meta.connection() as conn:
            day = _day(_events.c.time, conn.dialect.name)
            query = (
                select(day, _events.c.operation, func.count())
                .where(
                    _events.c.registry_id == registry_id,
                    _events.c.time >= since,
                    _events.c.operation.in_(_COUNTED),
                    _events.c.result_type < "400",
                )
                .group_by(day, _events.c.operation)
            )
            rows = conn.execute(query).all()
        counts: dict[date, dict[str, int]] = {}
        for raw, operation, count in rows:
            counts.setdefault(_as_date(raw), {})[operation] = count
        return [
            DayCounts(day, found.get("Push", 0), found.get("Pull", 0))
            for day, found in sorted(counts.items())
        ]

    def daily_arrivals(self, registry_id: int, since: datetime) -> dict[date, int]:
        """The bytes of the registry's blobs stored now, by the day (UTC) each arrived,
        from `since` on: with the registry's storage in use, what was stored by each
        day's end (of what is still stored: no history of removed blobs is kept)."""
        with self._meta.connection() as conn:
            day = _day(_blobs.c.created_at, conn.dialect.name)
            query = (
                select(day, func.sum(_blobs.c.size))
                .where(_blobs.c.registry_id == registry_id, _blobs.c.created_at >= since)
                .group_by(day)
            )
            return {_as_date(raw): int(size) for raw, size in conn.execute(query)}


def _day(column: Any, dialect: str) -> Any:
    """A timestamp's UTC day in SQL: SQLite keeps UTC text, PostgreSQL a timestamptz
    that `date()` would read in the session's time zone."""
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def _as_date(value: date | str) -> date:
    """SQLite's `date()` answers text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(value)
