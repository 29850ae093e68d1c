"""The portal's reads that `/acr/v1` has no query for: a page of a registry's
repositories found by a name prefix, sorted by name or last update, and the sizes of
the manifests a page of tags points at.

Every listing is keyset-paginated (`after` the last row shown): a prefix is a range on
the unique (registry, name) index, never a scan of every repository."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata

_r, _g, _m = t.repositories, t.tags, t.manifests


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
