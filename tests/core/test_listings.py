"""`dockyard.core.listings`: the `n` query parameter, and keyset pages over real metadata."""

from __future__ import annotations

import pytest

from dockyard.common.errors import NameInvalid, NameUnknown, PaginationInvalid
from dockyard.core.listings import MAX_PAGE, Listings, Page, page_size
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

DIGEST = "sha256:" + "a" * 64

# -- page_size ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, ""])
def test_absent_n_means_the_default(raw: str | None) -> None:
    assert page_size(raw, 100) == 100
    assert page_size(raw, None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), ("1", 1), ("50", 50), ("0050", 50), (str(MAX_PAGE), MAX_PAGE)],
)
def test_n_is_parsed(raw: str, expected: int) -> None:
    assert page_size(raw, 100) == expected
    assert page_size(raw, None) == expected


@pytest.mark.parametrize("raw", [str(MAX_PAGE + 1), "1000000", "9" * 40])
def test_n_is_clamped_to_the_maximum(raw: str) -> None:
    assert page_size(raw, 100) == MAX_PAGE


@pytest.mark.parametrize("raw", ["-1", "-0x1", "abc", "1.5", "1e3", "0x10", "ten", "5 5", "1,000"])
def test_bad_n_raises_pagination_invalid(raw: str) -> None:
    with pytest.raises(PaginationInvalid) as caught:
        page_size(raw, 100)
    assert caught.value.code == "PAGINATION_NUMBER_INVALID"


@pytest.mark.parametrize("raw", ["1_000", " 5", "5\n", "\u0663"])
def test_n_must_be_plain_decimal_digits(raw: str) -> None:
    with pytest.raises(PaginationInvalid):
        page_size(raw, 100)


# -- pages over metadata ---------------------------------------------------------------------


@pytest.fixture
def listings(meta: Metadata, registry: RegistryRecord) -> Listings:
    with meta.transaction() as tx:
        repo = tx.ensure_repository(registry.id, "library/app")
        for tag in ["v3", "v1", "latest", "v2", "beta"]:
            tx.set_tag(repo, tag, DIGEST)
        tx.ensure_repository(registry.id, "library/empty")
        tx.ensure_repository(registry.id, "alpha")
    return Listings(meta)


def test_tags_page_carries_where_the_next_one_starts(
    listings: Listings, registry: RegistryRecord
) -> None:
    first = listings.tags(registry, "library/app", None, 2)
    assert first == Page(["beta", "latest"], "latest", 2)
    second = listings.tags(registry, "library/app", first.next_last, 2)
    assert second == Page(["v1", "v2"], "v2", 2)
    third = listings.tags(registry, "library/app", second.next_last, 2)
    assert third == Page(["v3"], None, 2)


def test_tags_page_that_ends_exactly_has_no_next(
    listings: Listings, registry: RegistryRecord
) -> None:
    assert listings.tags(registry, "library/app", None, 5) == Page(
        ["beta", "latest", "v1", "v2", "v3"], None, 5
    )
    assert listings.tags(registry, "library/app", "v2", 1) == Page(["v3"], None, 1)


def test_tags_without_n_lists_everything(listings: Listings, registry: RegistryRecord) -> None:
    page = listings.tags(registry, "library/app", None, None)
    assert page.items == ["beta", "latest", "v1", "v2", "v3"]
    assert page.next_last is None
    assert listings.tags(registry, "library/empty", None, None).items == []


def test_tags_with_n_zero_is_empty(listings: Listings, registry: RegistryRecord) -> None:
    page = listings.tags(registry, "library/app", None, 0)
    assert page.items == []


def test_tags_of_unknown_or_invalid_repository(
    listings: Listings, registry: RegistryRecord
) -> None:
    with pytest.raises(NameUnknown) as caught:
        listings.tags(registry, "library/missing", None, 10)
    assert caught.value.detail == {"name": "library/missing"}
    with pytest.raises(NameInvalid):
        listings.tags(registry, "Library/App", None, 10)


def test_repositories_pages(listings: Listings, registry: RegistryRecord) -> None:
    first = listings.repositories(registry, None, 2)
    assert first == Page(["alpha", "library/app"], "library/app", 2)
    assert listings.repositories(registry, first.next_last, 2) == Page(["library/empty"], None, 2)
