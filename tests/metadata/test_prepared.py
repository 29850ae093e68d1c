"""Statements run straight on SQLite's driver write and read exactly what SQLAlchemy
would."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from dockyard.metadata import migrate
from dockyard.metadata import schema as t
from dockyard.metadata.attributes import Attributes, AttributeWrites
from dockyard.metadata.store import Metadata

NOW = datetime(2026, 11, 29, 18, 30, 15, 123456, tzinfo=UTC)


def test_rows_and_values_match_sqlalchemy(tmp_path) -> None:
    meta = Metadata(f"sqlite:///{tmp_path / 'meta.db'}", lambda: NOW)
    migrate.upgrade(meta.engine)
    with meta.transaction() as tx:
        registry = tx.create_registry("preparedtest", "localhost:1")
        tx.create_upload("fast", registry.id, "app")  # through the driver
        tx.conn.execute(  # through SQLAlchemy
            insert(t.uploads).values(
                id="core",
                registry_id=registry.id,
                repository="app",
                size=0,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with meta.engine.connect() as conn:
        stored = dict(conn.exec_driver_sql("SELECT id, updated_at FROM uploads").all())
    assert stored["fast"] == stored["core"]  # the same text: comparisons agree
    record = meta.upload("fast")
    assert record is not None and record.updated_at == NOW and record.created_at.tzinfo
    assert meta.uploads_idle_since(NOW) == []
    assert {u.id for u in meta.uploads_idle_since(datetime(2027, 1, 1, tzinfo=UTC))} == {
        "fast",
        "core",
    }
    with meta.transaction() as tx:
        repo = tx.ensure_repository(registry.id, "app")
        AttributeWrites(tx).set_locks(repo, {"write_enabled": False})
        assert tx.add_blob(registry.id, "sha256:" + "a" * 64, 5)
        assert not tx.add_blob(registry.id, "sha256:" + "a" * 64, 5)
        tx.link_blob(repo, "sha256:" + "a" * 64)
    found = Attributes(meta).repository_locks(registry.id, "app")
    assert found is not None and found.locks.write_enabled is False
    assert meta.blob_size(registry.id, "sha256:" + "a" * 64) == 5
    linked = meta.linked_blob(registry.id, "app", "sha256:" + "a" * 64)
    assert linked is not None and linked.size == 5 and linked.readable is True
    with meta.engine.connect() as conn:
        used = conn.execute(select(t.registries.c.storage_used_bytes)).scalar()
    assert used == 5
