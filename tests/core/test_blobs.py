"""`dockyard.core.blobs`: reads, mounts and unlinks under locks, on a real SQLite
`Metadata` and filesystem blob stores."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.common.errors import BlobUnknown, Locked
from dockyard.core.blobs import Blobs
from dockyard.metadata.attributes import AttributeWrites
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

DATA = b"a layer"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def blobs(meta: Metadata, stores: BlobStores, registry: RegistryRecord) -> Blobs:
    """Blobs, with DATA stored and linked in `source` and `dest` (created empty)."""
    store = stores.for_registry(registry.name)
    store.start_upload("u1")
    writer = store.append_upload("u1", 0)
    writer.write(DATA)
    writer.close()
    store.commit_upload("u1", DIGEST)
    with meta.transaction() as tx:
        tx.add_blob(registry.id, DIGEST, len(DATA))
        tx.link_blob(tx.ensure_repository(registry.id, "source"), DIGEST)
        tx.ensure_repository(registry.id, "dest")
    return Blobs(meta, stores)


def lock(meta: Metadata, registry: RegistryRecord, repo: str, **changes: bool) -> None:
    with meta.transaction() as tx:
        writes = AttributeWrites(tx)
        found = writes.repository_locks(registry.id, repo)
        assert found is not None
        writes.set_locks(found.id, changes)


def test_read_lock_refuses_blob_reads(blobs: Blobs, meta: Metadata, registry) -> None:
    assert blobs.locate(registry, "source", DIGEST).size == len(DATA)
    lock(meta, registry, "source", read_enabled=False)
    with pytest.raises(Locked, match='blob read refused: repository "source"'):
        blobs.locate(registry, "source", DIGEST)
    # Unknown stays unknown: the lock says nothing about blobs the repository lacks.
    with pytest.raises(BlobUnknown):
        blobs.locate(registry, "dest", DIGEST)


def test_mount_needs_a_writable_destination_and_a_readable_source(
    blobs: Blobs, meta: Metadata, registry
) -> None:
    lock(meta, registry, "source", read_enabled=False)
    assert blobs.mount(registry, "dest", DIGEST, "source") is False  # an upload follows
    lock(meta, registry, "source", read_enabled=True)
    lock(meta, registry, "dest", write_enabled=False)
    with pytest.raises(Locked, match='push refused: repository "dest"'):
        blobs.mount(registry, "dest", DIGEST, "source")
    lock(meta, registry, "dest", write_enabled=True)
    assert blobs.mount(registry, "dest", DIGEST, "source") is True
    assert blobs.mount(registry, "brand/new", DIGEST, "source") is True


def test_write_lock_refuses_unlink(blobs: Blobs, meta: Metadata, registry) -> None:
    lock(meta, registry, "source", write_enabled=False)
    with pytest.raises(Locked, match="blob delete refused"):
        blobs.unlink(registry, "source", DIGEST)
    lock(meta, registry, "source", write_enabled=True, delete_enabled=False)
    blobs.unlink(registry, "source", DIGEST)
    with pytest.raises(BlobUnknown):
        blobs.unlink(registry, "source", DIGEST)
    with pytest.raises(BlobUnknown):
        blobs.unlink(registry, "missing", DIGEST)


def test_link_stored_needs_the_row_and_its_bytes(
    blobs: Blobs, stores: BlobStores, registry: RegistryRecord
) -> None:
    """A collection that died after deleting a blob's bytes, before its commit, leaves the
    row: linking it again would make a blob visible that cannot be read."""
    assert blobs.link_stored(registry, "dest", DIGEST) is True
    assert blobs.locate(registry, "dest", DIGEST).size == len(DATA)
    stores.for_registry(registry.name).delete(DIGEST)
    assert blobs.link_stored(registry, "other", DIGEST) is False
    with pytest.raises(BlobUnknown):
        blobs.locate(registry, "other", DIGEST)
    unknown = "sha256:" + hashlib.sha256(b"never stored").hexdigest()
    assert blobs.link_stored(registry, "dest", unknown) is False
