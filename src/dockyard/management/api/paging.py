"""ARM's paging of list operations: `{"value": [...], "nextLink": URL}`, `nextLink`
absent on the last page. The SDK's pager GETs `nextLink` as given (its query kept, the
api-version replaced by the client's), for the POST `listEvents` too.

A page holds `$top` items (a Dockyard extension: default `PAGE_SIZE`, at most
`MAX_PAGE_SIZE`); `nextLink` is the request's URL with `$skipToken` set to the last
item's key (a name, or a webhook event's position), and the next page starts after
it: keyset paging, so items added or removed meanwhile never shift a page."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from dockyard.management.api.arm import InvalidRequestContent, json_response

PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
SKIP_TOKEN, TOP = "$skipToken", "$top"

T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    after: str | None  # the key the page starts after
    size: int


def whole_number(text: str) -> int | None:
    """`text` as a whole number the database's integers hold, None if it is none. ASCII
    digits only: `"²".isdigit()` is true, yet `int("²")` fails."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def page_request(request: Request) -> PageRequest:
    size = whole_number(request.query_params.get(TOP, str(PAGE_SIZE)))
    if size is None or not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequestContent(f"$top must be 1 to {MAX_PAGE_SIZE}")
    return PageRequest(request.query_params.get(SKIP_TOKEN) or None, size)


def page_of(
    request: Request, items: list[T], key: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """The page of `items` (all of them, in any order) the request asks for, and the key
    to continue after (None: the last page)."""
    wanted = page_request(request)
    ordered = sorted(items, key=key)
    if wanted.after is not None:
        ordered = [item for item in ordered if key(item) > wanted.after]
    return cut(ordered, wanted.size, key)


def page_from_index(
    request: Request, read: Callable[..., list[T]], key: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """The page the request asks for, read from an index: `read(after=, limit=)` gives
    up to `limit` items in key order after the key `after` (None: from the first)."""
    wanted = page_request(request)
    return cut(read(after=wanted.after, limit=wanted.size + 1), wanted.size, key)


def cut(items: list[T], size: int, key: Callable[[T], str]) -> tuple[list[T], str | None]:
    """`items` read one past a page of `size`: the page, and its last key if more
    follow."""
    if len(items) <= size:
        return items, None
    return items[:size], key(items[size - 1])


def page_response(
    request: Request, values: list[dict[str, Any]], next_after: str | None
) -> Response:
    body: dict[str, Any] = {"value": values}
    if next_after is not None:
        body["nextLink"] = str(request.url.include_query_params(**{SKIP_TOKEN: next_after}))
    return json_response(body)
