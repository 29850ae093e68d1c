"""The per-thread manifest read cache must never serve what another connection changed."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from dockyard.metadata import migrate
from dockyard.metadata.records import ManifestContent
from dockyard.metadata.store import Metadata


def clock() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


def content(digest: str, body: bytes) -> ManifestContent:
    return ManifestContent(
        digest, "application/vnd.oci.image.manifest.v1+json", body, None, None, None, (), ()
    )


def test_changes_by_another_process_connection_are_seen(tmp_path):
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    reader, writer = Metadata(url, clock), Metadata(url, clock)
    migrate.upgrade(reader.engine)
    with writer.transaction() as tx:
        registry = tx.create_registry("cachetest", "localhost:1")
        repo = tx.ensure_repository(registry.id, "app")
        tx.put_manifest(repo, content("sha256:" + "a" * 64, b"first"))
        tx.put_manifest(repo, content("sha256:" + "b" * 64, b"second"))
        tx.set_tag(repo, "latest", "sha256:" + "a" * 64)

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
