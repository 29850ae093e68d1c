"""The per-thread read caches must never serve what another connection changed; the
configuration's cache outlives changes of content, and the content's outlives writes
that leave it alone (audit rows, blobs, outbox events)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from dockyard.metadata import migrate, schema
from dockyard.metadata.audit import AuditStore, RepositoryEventRecord
from dockyard.metadata.read_cache import CONFIG_TABLES, CONTENT_TABLES
from dockyard.metadata.records import ManifestContent, RegistryRecord
from dockyard.metadata.store import Metadata


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def content(digest: str, body: bytes) -> ManifestContent:
    return ManifestContent(
        digest, "application/vnd.oci.image.manifest.v1+json", body, None, None, None, (), ()
    )


def _two_connections_one_tag(tmp_path) -> tuple[Metadata, Metadata, RegistryRecord, int]:
    """A reader and a writer on one database, with repository `app` holding manifests
    `first` (tagged `latest`) and `second`."""
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    reader, writer = Metadata(url, clock), Metadata(url, clock)
    migrate.upgrade(reader.engine)
    with writer.transaction() as tx:
        registry = tx.create_registry("cachetest", "localhost:1")
        repo = tx.ensure_repository(registry.id, "app")
        tx.put_manifest(repo, content("sha256:" + "a" * 64, b"first"))
        tx.put_manifest(repo, content("sha256:" + "b" * 64, b"second"))
        tx.set_tag(repo, "latest", "sha256:" + "a" * 64)
    return reader, writer, registry, repo


def test_changes_by_another_process_connection_are_seen(tmp_path):
    reader, writer, registry, repo = _two_connections_one_tag(tmp_path)

    assert reader.manifest_by_tag(registry.id, "app", "latest").body == b"first"
    assert reader.manifest_by_tag(registry.id, "app", "latest").body == b"first"  # cached
    with writer.transaction() as tx:
        tx.set_tag(repo, "latest", "sha256:" + "b" * 64)
    assert reader.manifest_by_tag(registry.id, "app", "latest").body == b"second"

    with writer.transaction() as tx:
        tx.delete_manifest(repo, "sha256:" + "b" * 64)
    assert reader.manifest_by_tag(registry.id, "app", "latest") is None
    assert reader.manifest_by_digest(registry.id, "app", "sha256:" + "b" * 64) is None


def test_changes_by_own_thread_and_other_threads_are_seen(tmp_path):
    meta = Metadata(f"sqlite:///{tmp_path / 'meta.db'}", clock)
    migrate.upgrade(meta.engine)
    with meta.transaction() as tx:
        registry = tx.create_registry("cachetest", "localhost:1")
        repo = tx.ensure_repository(registry.id, "app")
        tx.put_manifest(repo, content("sha256:" + "a" * 64, b"first"))
        tx.put_manifest(repo, content("sha256:" + "b" * 64, b"second"))
        tx.set_tag(repo, "latest", "sha256:" + "a" * 64)
    assert meta.manifest_by_tag(registry.id, "app", "latest").body == b"first"
    with meta.transaction() as tx:
        tx.set_tag(repo, "latest", "sha256:" + "b" * 64)
    assert meta.manifest_by_tag(registry.id, "app", "latest").body == b"second"

    def move_back() -> None:
        with meta.transaction() as tx:
            tx.set_tag(repo, "latest", "sha256:" + "a" * 64)

    thread = threading.Thread(target=move_back)
    thread.start()
    thread.join()
    assert meta.manifest_by_tag(registry.id, "app", "latest").body == b"first"


# -- the configuration cache -------------------------------------------------------------


def test_configuration_reads_outlive_content_changes(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    reader, writer = Metadata(url, clock), Metadata(url, clock)
    migrate.upgrade(reader.engine)
    with writer.transaction() as tx:
        registry = tx.create_registry("cachetest", "localhost:1")
    loads: list[int] = []

    def probe() -> None:
        return reader.cached(("config probe",), lambda conn: loads.append(1), config=True)

    probe()
    with writer.transaction() as tx:  # content: a repository, a manifest, storage use
        repo = tx.ensure_repository(registry.id, "app")
        tx.put_manifest(repo, content("sha256:" + "a" * 64, b"first"))
        tx.add_blob(registry.id, "sha256:" + "c" * 64, 10)
    probe()
    assert len(loads) == 1
    with writer.transaction() as tx:  # configuration: the registry's anonymous pull
        tx.conn.execute(
            schema.registries.update()
            .where(schema.registries.c.id == registry.id)
            .values(anonymous_pull_enabled=True)
        )
    probe()
    assert len(loads) == 2
    with reader.transaction() as tx:  # this thread's own change is seen too
        tx.conn.execute(
            schema.network_rules.insert().values(
                registry_id=registry.id, cidr="10.0.0.0/8", action="Allow", created_at=clock()
            )
        )
    probe()
    assert len(loads) == 3


def _watched(tmp_path, counter: str) -> set[str]:
    meta = Metadata(f"sqlite:///{tmp_path / 'meta.db'}", clock)
    migrate.upgrade(meta.engine)
    with meta.engine.connect() as conn:
        return {
            row[0]
            for row in conn.exec_driver_sql(
                "SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'"
                f" AND sql LIKE '%{counter}%'"
            )
        }


def test_every_configuration_table_bumps_the_counter(tmp_path):
    assert _watched(tmp_path, "config_generation") == set(CONFIG_TABLES)


def test_every_content_table_bumps_its_counter(tmp_path):
    assert _watched(tmp_path, "content_generation") == set(CONTENT_TABLES)


# -- the content cache -------------------------------------------------------------------


def test_content_reads_outlive_writes_that_leave_content_alone(tmp_path):
    reader, writer, registry, repo = _two_connections_one_tag(tmp_path)
    loads: list[int] = []

    def probe() -> None:
        return reader.cached(("content probe",), lambda conn: loads.append(1))

    probe()
    pull = RepositoryEventRecord(clock(), "Pull", "app", "200")
    AuditStore(writer).add([(registry.id, pull)])  # a pull's audit row
    with writer.transaction() as tx:  # a blob, and an event with no content change
        tx.add_blob(registry.id, "sha256:" + "c" * 64, 10)
        tx.emit(registry.id, "lock", "app", {})
    probe()
    assert len(loads) == 1
    assert reader.manifest_by_tag(registry.id, "app", "latest").body == b"first"
    with writer.transaction() as tx:  # content: the tag moves
        tx.set_tag(repo, "latest", "sha256:" + "b" * 64)
    probe()
    assert len(loads) == 2
    assert reader.manifest_by_tag(registry.id, "app", "latest").body == b"second"
    with writer.engine.begin() as conn:  # a lock change, made outside any transaction()
        conn.execute(
            schema.manifests.update()
            .where(schema.manifests.c.repository_id == repo)
            .values(read_enabled=False)
        )
    assert reader.manifest_by_tag(registry.id, "app", "latest").read.manifest is False


def test_the_counters_read_survives_a_session_that_lost_its_prepared_statement(
    postgres, clock
) -> None:
    """On PostgreSQL the check is a statement prepared once per session: a session
    that lost it (`DEALLOCATE ALL`, as a pooler's reset does) prepares it again."""
    meta = Metadata(postgres.create_database("prepared"), clock)
    try:
        migrate.upgrade(meta.engine)
        with meta.transaction() as tx:
            registry = tx.create_registry("cachetest", "localhost:1")
            repo = tx.ensure_repository(registry.id, "app")
            tx.put_manifest(repo, content("sha256:" + "a" * 64, b"first"))
            tx.set_tag(repo, "latest", "sha256:" + "a" * 64)
        assert meta.manifest_by_tag(registry.id, "app", "latest").body == b"first"
        with meta.connection() as conn:
            conn.exec_driver_sql("DEALLOCATE ALL")
        with meta.transaction() as tx:
            tx.put_manifest(repo, content("sha256:" + "b" * 64, b"second"))
            tx.set_tag(repo, "latest", "sha256:" + "b" * 64)
        assert meta.manifest_by_tag(registry.id, "app", "latest").body == b"second"
    finally:
        meta.close()
