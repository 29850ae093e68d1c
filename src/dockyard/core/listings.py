"""Tag and repository listings, keyset-paginated on an index (`name > last`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.core.errors import NameUnknown, PaginationInvalid
from dockyard.core.names import check_repository_name
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

MAX_PAGE = 10_000
_DECIMAL = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Page:
    items: list[str]
    next_last: str | None  # where the next page starts, if there is one
    n: int


def page_size(raw: str | None, default: int | None) -> int | None:
    """The page size a client asked for, clamped to MAX_PAGE; None means everything."""
    if raw is None or raw == "":
        return default
    if not _DECIMAL.fullmatch(raw):
        raise PaginationInvalid(f"n must be a non-negative integer, not {raw!r}")
    digits = raw.lstrip("0") or "0"
    return MAX_PAGE if len(digits) > len(str(MAX_PAGE)) else min(int(digits), MAX_PAGE)


class Listings:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def tags(self, registry: RegistryRecord, repo: str, last: str | None, n: int | None) -> Page:
        check_repository_name(repo)
        limit = MAX_PAGE * 100 if n is None else n
        found = self._meta.tags(registry.id, repo, last, limit + 1)
        if found is None:
            raise NameUnknown(detail={"name": repo})
        return _page(found, limit)

    def repositories(self, registry: RegistryRecord, last: str | None, n: int) -> Page:
        return _page(self._meta.repositories(registry.id, last, n + 1), n)


def _page(found: list[str], limit: int) -> Page:
    if len(found) > limit:
        items = found[:limit]
        return Page(items, items[-1] if items else None, limit)
    return Page(found, None, limit)
