"""`dockyard.core.properties`: `/acr/v1` reads, pages and lock changes, on a real SQLite
`Metadata` (the query shapes themselves are in the metadata contract suite)."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from dockyard.common.errors import (
    DigestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    RequestInvalid,
    TagInvalid,
)
from dockyard.core.properties import Properties, lock_changes, order_of
from dockyard.metadata import schema as t
from dockyard.metadata.attributes import Order
from dockyard.metadata.records import Locks, ManifestContent, RegistryRecord
from dockyard.metadata.store import Metadata

REPO = "team/app"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


@pytest.fixture
def properties(meta: Metadata, registry: RegistryRecord, clock) -> Properties:
    """Properties over a repository with manifests D1 (tags a, b, c) and D2 (tag z)."""
    with meta.transaction() as tx:
        repo = tx.ensure_repository(registry.id, REPO)
        for digest in (D1, D2):
            tx.put_manifest(
                repo, ManifestContent(digest, "application/x", b"{}", None, None, None, (), ())
            )
    for tag, digest in (("c", D1), ("a", D1), ("b", D1), ("z", D2)):
        clock.advance(timedelta(seconds=1))
        with meta.transaction() as tx:
            tx.set_tag(repo, tag, digest)
    return Properties(meta)


def lock_events(meta: Metadata) -> list[dict]:
    e = t.events
    with meta.engine.connect() as conn:
        rows = conn.execute(select(e.c.payload).where(e.c.action == "lock").order_by(e.c.id))
        return [orjson.loads(payload) for payload in rows.scalars()]


@pytest.mark.parametrize(
    ("raw", "order"),
    [
        (None, Order.NAME),
        ("", Order.NAME),
        ("none", Order.NAME),
        ("timedesc", Order.TIME_DESC),
        ("TimeAsc", Order.TIME_ASC),
    ],
)
def test_orderby_values(raw: str | None, order: Order) -> None:
    assert order_of(raw) is order


@pytest.mark.parametrize("raw", ["time_desc", "name", "timedesc "])
def test_unknown_orderby_is_refused_not_ignored(raw: str) -> None:
    with pytest.raises(RequestInvalid, match="orderby must be"):
        order_of(raw)


def test_lock_changes_take_acr_names() -> None:
    assert lock_changes({"writeEnabled": False, "listEnabled": True}) == {
        "write_enabled": False,
        "list_enabled": True,
    }
    assert lock_changes({}) == {}
    # What GET shows may be sent back as it is.
    assert lock_changes({"deleteEnabled": True, "teleportEnabled": False}) == {
        "delete_enabled": True
    }


@pytest.mark.parametrize(
    "body",
    [
        [],
        "writeEnabled",
        {"writeEnabled": "false"},
        {"writeEnabled": 0},
        {"teleportEnabled": True},
        {"quarantineState": "Passed"},
        {"write_enabled": False},
    ],
)
def test_lock_changes_refuse_anything_else(body: object) -> None:
    with pytest.raises(RequestInvalid):
        lock_changes(body)


def test_reads_say_which_part_is_unknown(properties: Properties, registry) -> None:
    assert properties.repository(registry, REPO).tag_count == 4
    assert properties.tag(registry, REPO, "a").digest == D1
    assert properties.manifest(registry, REPO, D1).tags == ("a", "b", "c")
    for call, args in [
        (properties.repository, ("missing",)),
        (properties.tag, ("missing", "a")),
        (properties.manifest, ("missing", D1)),
    ]:
        with pytest.raises(NameUnknown):
            call(registry, *args)
    with pytest.raises(ManifestUnknown):
        properties.tag(registry, REPO, "nope")
    with pytest.raises(ManifestUnknown):
        properties.manifest(registry, REPO, "sha256:" + "3" * 64)
    with pytest.raises(NameInvalid):
        properties.repository(registry, "Bad")
    with pytest.raises(TagInvalid):
        properties.tag(registry, REPO, "bad:tag")
    with pytest.raises(DigestInvalid):
        properties.manifest(registry, REPO, "sha256:short")


def test_tag_pages(properties: Properties, registry) -> None:
    first = properties.tags(registry, REPO, last=None, n=2)
    assert [tag.name for tag in first.items] == ["a", "b"]
    assert (first.next_last, first.n) == ("b", 2)
    rest = properties.tags(registry, REPO, last=first.next_last, n=2)
    assert [tag.name for tag in rest.items] == ["c", "z"] and rest.next_last is None
    newest = properties.tags(registry, REPO, last=None, n=3, orderby="timedesc")
    assert [tag.name for tag in newest.items] == ["z", "b", "a"] and newest.next_last == "a"
    on_d2 = properties.tags(registry, REPO, last=None, n=10, digest=D2)
    assert [tag.name for tag in on_d2.items] == ["z"]
    with pytest.raises(DigestInvalid):
        properties.tags(registry, REPO, last=None, n=10, digest="sha256:nope")
    with pytest.raises(NameUnknown):
        properties.tags(registry, "missing", last=None, n=10)


def test_manifest_pages(properties: Properties, registry) -> None:
    page = properties.manifests(registry, REPO, last=None, n=1)
    assert [m.digest for m in page.items] == [D1] and page.next_last == D1
    assert [m.digest for m in properties.manifests(registry, REPO, last=D1, n=1).items] == [D2]
    with pytest.raises(NameUnknown):
        properties.manifests(registry, "missing", last=None, n=1)


def test_updates_return_the_new_state_and_emit_an_event(
    properties: Properties, meta: Metadata, registry
) -> None:
    repo = properties.update_repository(registry, REPO, {"write_enabled": False})
    assert repo.locks == Locks(write_enabled=False)
    tag = properties.update_tag(registry, REPO, "a", {"read_enabled": False})
    assert tag.locks == Locks(read_enabled=False)
    manifest = properties.update_manifest(registry, REPO, D2, {"delete_enabled": False})
    assert manifest.locks == Locks(delete_enabled=False)
    assert lock_events(meta) == [
        {"repository": REPO, "changeableAttributes": {"writeEnabled": False}},
        {"repository": REPO, "tag": "a", "changeableAttributes": {"readEnabled": False}},
        {"repository": REPO, "digest": D2, "changeableAttributes": {"deleteEnabled": False}},
    ]
    # Locks never refuse attribute changes: that is how they are lifted.
    assert properties.update_repository(registry, REPO, {"write_enabled": True}).locks == Locks()


def test_empty_and_unknown_updates(properties: Properties, meta: Metadata, registry) -> None:
    before = properties.tag(registry, REPO, "a")
    assert properties.update_tag(registry, REPO, "a", {}) == before
    assert lock_events(meta) == []
    with pytest.raises(ManifestUnknown):
        properties.update_tag(registry, REPO, "nope", {"write_enabled": False})
    with pytest.raises(ManifestUnknown):
        properties.update_tag(registry, REPO, "nope", {})
    with pytest.raises(NameUnknown):
        properties.update_repository(registry, "missing", {"write_enabled": False})
    assert lock_events(meta) == []
