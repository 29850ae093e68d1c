"""The read cache on every database kind: checked against the change counters once per
request, so a request reads one snapshot, the next one sees what any node committed
before it began, and a hit needs no query; the counters move only with what the caches
hold. On SQLite the check is local (`data_version`); on PostgreSQL it is one read of
the counters, bumped by migration 0018's triggers."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import Connection

from dockyard.common.request_context import RequestInfo, current_request
from dockyard.metadata import read_cache
from dockyard.metadata import schema as t
from dockyard.metadata.audit import AuditStore, RepositoryEventRecord
from dockyard.metadata.read_cache import CONFIG_TABLES, CONTENT_TABLES
from dockyard.metadata.records import ManifestContent, RegistryRecord
from dockyard.metadata.store import Metadata

if TYPE_CHECKING:
    from fake_clock import FakeClock

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def content(digest: str) -> ManifestContent:
    return ManifestContent(
        digest, "application/vnd.oci.image.manifest.v1+json", b"{}", None, None, None, (), ()
    )


@pytest.fixture
def node(meta: Metadata, database_url: str, clock: FakeClock) -> Iterator[Metadata]:
    """Another node (or worker) on the same database, with its own connections."""
    other = Metadata(database_url, clock)
    yield other
    other.close()


def tagged(meta: Metadata) -> tuple[RegistryRecord, int]:
    with meta.transaction() as tx:
        registry = tx.create_registry("cachetest", "cachetest.example")
        repo = tx.ensure_repository(registry.id, "app")
        tx.put_manifest(repo, content(D1))
        tx.put_manifest(repo, content(D2))
        tx.set_tag(repo, "latest", D1)
    return registry, repo


def in_request(work: Callable[[], Any]) -> Any:
    """`work` in a request of its own: in a context of its own, as each ASGI request
    runs, so the request's mark ends with it."""

    def run() -> Any:
        current_request.set(RequestInfo("request", "cachetest.example", "GET", "test"))
        return work()

    return contextvars.copy_context().run(run)


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The read cache's reads of the change counters, as they happen."""
    made: list[str] = []
    driver_execute = read_cache.driver_execute

    def counted(conn: Connection, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        made.append(sql)
        return driver_execute(conn, sql, parameters)

    monkeypatch.setattr(read_cache, "driver_execute", counted)
    return made


def test_a_request_reads_one_snapshot_and_the_next_sees_another_nodes_commit(
    meta: Metadata, node: Metadata
) -> None:
    registry, repo = tagged(meta)

    def by_tag() -> str | None:
        found = node.manifest_by_tag(registry.id, "app", "latest")
        return None if found is None else found.digest

    def moved_meanwhile() -> str | None:
        assert by_tag() == D1
        with meta.transaction() as tx:
            tx.set_tag(repo, "latest", D2)
        return by_tag()

    assert in_request(moved_meanwhile) == D1  # one snapshot per request
    assert in_request(by_tag) == D2
    with meta.transaction() as tx:
        tx.delete_manifest(repo, D2)
    assert in_request(by_tag) is None
    assert in_request(lambda: node.manifest_by_digest(registry.id, "app", D2)) is None


def test_a_hit_needs_no_query_and_a_request_checks_once(
    meta: Metadata, node: Metadata, checks: list[str]
) -> None:
    registry, _ = tagged(meta)
    in_request(lambda: node.manifest_by_tag(registry.id, "app", "latest"))  # loads
    loads: list[int] = []

    def hot_reads() -> None:
        before = len(checks)
        assert node.manifest_by_tag(registry.id, "app", "latest").digest == D1
        assert node.manifest_by_digest(registry.id, "app", D1).digest == D1
        node.cached(("probe",), lambda conn: loads.append(1))
        node.cached(("probe",), lambda conn: loads.append(1))
        node.cached(("config probe",), lambda conn: loads.append(1), config=True)
        # SQLite reads its counters only after data_version moved; PostgreSQL once a request.
        assert len(checks) - before <= 1

    in_request(hot_reads)
    in_request(hot_reads)
    assert len(loads) == 2  # the probes, once each


def test_content_reads_outlive_writes_that_leave_content_alone(
    meta: Metadata, node: Metadata
) -> None:
    registry, repo = tagged(meta)
    loads: list[str] = []

    def probe(config: bool = False) -> None:
        kind = "config" if config else "content"
        in_request(lambda: node.cached((kind,), lambda conn: loads.append(kind), config=config))

    probe(), probe(config=True)
    pull = RepositoryEventRecord(meta.clock(), "Pull", "app", "200")
    AuditStore(meta).add([(registry.id, pull)])  # a pull's audit row
    with meta.transaction() as tx:  # a blob, its storage use, an event: no content change
        tx.add_blob(registry.id, "sha256:" + "c" * 64, 10)
        tx.emit(registry.id, "lock", "app", {})
    probe(), probe(config=True)
    assert loads == ["content", "config"]
    with meta.transaction() as tx:  # content: the tag moves
        tx.set_tag(repo, "latest", D2)
    probe(), probe(config=True)
    assert loads == ["content", "config", "content"]
    with meta.transaction() as tx:  # configuration: the registry's anonymous pull
        tx.conn.execute(
            t.registries.update()
            .where(t.registries.c.id == registry.id)
            .values(anonymous_pull_enabled=True)
        )
    probe(), probe(config=True)
    assert loads == ["content", "config", "content", "config"]


def _watched(meta: Metadata, counter: str) -> set[str]:
    """The tables whose triggers bump `counter`."""
    with meta.connection() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
                f" AND sql LIKE '%{counter}%'"
            )
        else:
            rows = conn.exec_driver_sql(
                "SELECT c.relname FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid"
                f" JOIN pg_proc p ON p.oid = g.tgfoid WHERE p.proname = 'bump_{counter}'"
            )
        return {row[0] for row in rows}


def test_every_cached_table_bumps_its_counter(meta: Metadata) -> None:
    assert _watched(meta, "config_generation") == set(CONFIG_TABLES)
    assert _watched(meta, "content_generation") == set(CONTENT_TABLES)


def test_storage_use_and_failed_logins_cleared_leave_the_configuration_alone(
    meta: Metadata,
) -> None:
    """Every blob moves the registry's storage use, and every successful login clears
    its failures (mostly none): neither may empty every node's configuration cache."""
    registry, _ = tagged(meta)

    def generation() -> int:
        with meta.connection() as conn:
            return conn.exec_driver_sql("SELECT value FROM config_generation").scalar_one()

    before = generation()
    with meta.transaction() as tx:
        tx.change_storage_used(registry.id, 10)
        tx.conn.execute(t.login_failures.delete().where(t.login_failures.c.key == "nobody"))
    assert generation() == before
