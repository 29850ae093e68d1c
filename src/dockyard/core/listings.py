"""Tag and repository listings, keyset-paginated on an index (`name > last`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from dockyard.common.errors import NameUnknown, PaginationInvalid
from dockyard.common.names import check_repository_name
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

MAX_PAGE = 10_000
_DECIMAL = re.compile(r"[0-9]+")
T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
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

    def tags(
        self, registry: RegistryRecord, repo: str, last: str | None, n: int | None
    ) -> Page[str]:
        check_repository_name(repo)
        limit = MAX_PAGE * 100 if n is None else n
        found = self._meta.tags(registry.id, repo, last, limit + 1)
        if found is None:
            raise NameUnknown(detail={"name": repo})
        return page_of(found, limit, str)

    def repositories(self, registry: RegistryRecord, last: str | None, n: int) -> Page[str]:
        return page_of(self._meta.repositories(registry.id, last, n + 1), n, str)


def page_of(found: list[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """A page from up to `limit + 1` items fetched: one more than fits means there is a
    next page, which starts after the `key` of the last item shown."""
    if len(found) > limit:
        items = found[:limit]
        return Page(items, key(items[-1]) if items else None, limit)
    return Page(found, None, limit)
