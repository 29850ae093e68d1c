"""`metadata/network.py`: the cached policy read on every request must follow every change,
made by this connection or another process's, and the rule writes keep their limits."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import copy_database
from sqlalchemy import event

from dockyard.metadata.network import (
    POLICY_TTL_SECONDS,
    NetworkPolicy,
    NetworkStore,
    NetworkWrites,
    TooManyRules,
)
from dockyard.metadata.store import Metadata


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'meta.db'}"


@pytest.fixture
def meta(url: str, migrated_sqlite: Path) -> Iterator[Metadata]:
    copy_database(migrated_sqlite, Path(url.removeprefix("sqlite:///")))
    metadata = Metadata(url, clock)
    yield metadata
    metadata.close()


@pytest.fixture
def registry_id(meta: Metadata) -> int:
    with meta.transaction() as tx:
        tx.create_registry("other", "other.example")
        return tx.create_registry("contoso", "contoso.example").id


def test_nothing_restricted_loads_an_empty_mapping(meta: Metadata, registry_id: int) -> None:
    with meta.transaction() as tx:  # a rule under default Allow restricts nothing
        NetworkWrites(tx).add_rule(registry_id, "192.0.2.0/24", limit=200)
    assert NetworkStore(meta).policies() == {}


def test_changes_by_this_connection_are_seen_at_once(meta: Metadata, registry_id: int) -> None:
    store = NetworkStore(meta)
    assert store.policies() == {}
    with meta.transaction() as tx:
        NetworkWrites(tx).set_access(registry_id, default_action="Deny")
    assert store.policies() == {registry_id: NetworkPolicy(True, "Deny", ())}
    with meta.transaction() as tx:
        writes = NetworkWrites(tx)
        writes.add_rule(registry_id, "192.0.2.0/24", limit=200)
        writes.add_rule(registry_id, "2001:db8::1", limit=200)
    policy = store.policies()[registry_id]
    assert set(policy.allowed) == {
        ipaddress.ip_network("192.0.2.0/24"),
        ipaddress.ip_network("2001:db8::1/128"),
    }
    with meta.transaction() as tx:
        NetworkWrites(tx).set_access(registry_id, public_network_access=False)
    assert store.policies()[registry_id].public_network_access is False


def test_changes_by_another_process_are_seen(url: str, meta: Metadata, registry_id: int) -> None:
    store = NetworkStore(meta)
    assert store.policies() == {}
    assert store.policies() == {}  # cached
    other = Metadata(url, clock)  # what `dockyard network-rule` does, from its own process
    try:
        with other.transaction() as tx:
            NetworkWrites(tx).set_access(registry_id, default_action="Deny")
    finally:
        other.close()
    assert registry_id in store.policies()


def test_without_a_change_counter_the_policy_is_reloaded_after_the_ttl(
    url: str, meta: Metadata, registry_id: int
) -> None:
    now = [100.0]
    uncached = Metadata(url, clock, read_cache=False)  # as on PostgreSQL
    try:
        store = NetworkStore(uncached, monotonic=lambda: now[0])
        assert store.policies() == {}
        with meta.transaction() as tx:
            NetworkWrites(tx).set_access(registry_id, default_action="Deny")
        now[0] += POLICY_TTL_SECONDS - 0.1
        assert store.policies() == {}  # stale for at most the TTL
        now[0] += 0.2
        assert registry_id in store.policies()
    finally:
        uncached.close()


def test_rules_are_listed_added_once_and_removed(meta: Metadata, registry_id: int) -> None:
    store = NetworkStore(meta)
    with meta.transaction() as tx:
        writes = NetworkWrites(tx)
        assert writes.add_rule(registry_id, "192.0.2.0/24", limit=200) is True
        assert writes.add_rule(registry_id, "192.0.2.0/24", limit=200) is False
        assert writes.add_rule(registry_id, "10.0.0.1", limit=200) is True
    assert [r.rule for r in store.rules(registry_id)] == ["10.0.0.1", "192.0.2.0/24"]
    assert all(r.action == "Allow" and r.created_at == clock() for r in store.rules(registry_id))
    with meta.transaction() as tx:
        assert NetworkWrites(tx).remove_rule(registry_id, "10.0.0.1") is True
        assert NetworkWrites(tx).remove_rule(registry_id, "10.0.0.1") is False
    assert [r.rule for r in store.rules(registry_id)] == ["192.0.2.0/24"]


def test_the_rule_limit_holds_but_an_existing_rule_is_no_error(
    meta: Metadata, registry_id: int
) -> None:
    with meta.transaction() as tx:
        writes = NetworkWrites(tx)
        writes.add_rule(registry_id, "10.0.0.1", limit=2)
        writes.add_rule(registry_id, "10.0.0.2", limit=2)
        assert writes.add_rule(registry_id, "10.0.0.2", limit=2) is False
        with pytest.raises(TooManyRules):
            writes.add_rule(registry_id, "10.0.0.3", limit=2)


def test_registry_by_name(meta: Metadata, registry_id: int) -> None:
    store = NetworkStore(meta)
    found = store.registry("Contoso")
    assert found is not None
    assert (found.id, found.name, found.public_network_access, found.default_action) == (
        registry_id,
        "contoso",
        True,
        "Allow",
    )
    assert store.registry("missing") is None


def test_a_cached_policy_costs_no_query(meta: Metadata, registry_id: int) -> None:
    """The policy is read on every request, the manifest GET hot path included."""
    store = NetworkStore(meta)
    statements: list[str] = []
    event.listen(meta.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    store.policies()
    assert statements  # the first read loads (the listener sees queries)
    for restricted in (False, True):
        if restricted:
            with meta.transaction() as tx:
                NetworkWrites(tx).set_access(registry_id, default_action="Deny")
            store.policies()
        statements.clear()
        for _ in range(100):
            store.policies()
        assert statements == []
