"""Quarantine's queries (`metadata.quarantine`) on every database kind: a registry's
policy and a manifest's state, read through the read cache as a pull reads them, seen
by another node from its next request on (migration 0021's triggers move the change
counters on both kinds), kept across a restart, and gone with their manifest."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from dockyard.common.request_context import RequestInfo, current_request
from dockyard.metadata import quarantine as q
from dockyard.metadata.records import ManifestContent, RegistryRecord
from dockyard.metadata.store import Metadata

if TYPE_CHECKING:
    from fake_clock import FakeClock

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
INDEX = "sha256:" + "3" * 64


@pytest.fixture
def node(meta: Metadata, database_url: str, clock: FakeClock) -> Iterator[Metadata]:
    """Another node (or worker) on the same database, with its own connections."""
    other = Metadata(database_url, clock)
    yield other
    other.close()


def in_request(work: Callable[[], Any]) -> Any:
    def run() -> Any:
        current_request.set(RequestInfo("request", "quarantine.example", "GET", "test"))
        return work()

    return contextvars.copy_context().run(run)


def stored(meta: Metadata) -> RegistryRecord:
    with meta.transaction() as tx:
        registry = tx.create_registry("quarantine", "quarantine.example")
        repo = tx.ensure_repository(registry.id, "app")
        for digest in (D1, D2):
            tx.put_manifest(repo, ManifestContent(digest, "m", b"{}", None, None, None, (), ()))
        index = ManifestContent(INDEX, "i", b"{ }", None, None, None, (), (D1, D2))
        tx.put_manifest(repo, index)
        tx.set_tag(repo, "v1", INDEX)
    return registry


def set_state(meta: Metadata, registry: RegistryRecord, digest: str, state: str) -> str | None:
    with meta.transaction() as tx:
        writes = q.QuarantineWrites(tx)
        found = writes.manifest(registry.id, "app", digest)
        assert found is not None
        return writes.set_state(found.id, state, '{"state": "scanned"}')


def test_the_policy_and_states_reach_another_node_at_its_next_request(
    meta: Metadata, node: Metadata
) -> None:
    registry = stored(meta)

    def look() -> tuple[bool, q.StoredState | None]:
        return q.policy_enabled(node, registry.id), q.state_of(node, registry.id, "app", D1)

    assert in_request(look) == (False, None)
    q.set_policy(meta, registry.id, True)
    assert set_state(meta, registry, D1, "Failed") is None
    assert in_request(look) == (True, q.StoredState("Failed", '{"state": "scanned"}'))
    assert set_state(meta, registry, D1, "Passed") == "Failed"
    q.set_policy(meta, registry.id, False)
    assert in_request(look) == (False, q.StoredState("Passed", '{"state": "scanned"}'))


def test_what_a_writer_sets_names_tags_and_children_and_goes_with_its_manifest(
    meta: Metadata, database_url: str, clock: FakeClock
) -> None:
    registry = stored(meta)
    with meta.transaction() as tx:
        found = q.QuarantineWrites(tx).manifest(registry.id, "app", INDEX)
    assert found is not None
    assert (found.tags, found.children, found.size) == (("v1",), (D1, D2), 3)
    set_state(meta, registry, D2, "Passed")
    q.set_policy(meta, registry.id, True)
    restarted = Metadata(database_url, clock)  # a restart: nothing kept but the database
    try:
        assert q.policy_enabled(restarted, registry.id)
        assert q.states_of(restarted, registry.id, "app", [D1, D2, INDEX]) == {
            D2: q.StoredState("Passed", '{"state": "scanned"}')
        }
    finally:
        restarted.close()
    with meta.transaction() as tx:
        repo = tx.repository_id(registry.id, "app")
        assert repo is not None
        tx.delete_manifest(repo, INDEX)
        tx.delete_manifest(repo, D2)
        tx.put_manifest(repo, ManifestContent(D2, "m", b"{}", None, None, None, (), ()))
    # Pushed again after its delete: quarantined again, as any new push.
    assert in_request(lambda: q.state_of(meta, registry.id, "app", D2)) is None
