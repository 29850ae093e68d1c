"""`dockyard.lifecycle.soft_delete`: deletes go to the recycle bin while the policy is on,
garbage collection keeps what the bin references, restores bring manifests and tags
back byte-identical, pushes of a binned digest are refused, and items expire."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from test_retention import DAY, Lifecycle

from dockyard.common.errors import Conflict, Denied, ManifestBlobUnknown, RequestInvalid
from dockyard.core.manifest_formats import OCI_MANIFEST
from dockyard.core.properties import Properties
from dockyard.lifecycle.soft_delete import SoftDelete
from dockyard.metadata.records import Locks, RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from fake_clock import FakeClock


class Binning(Lifecycle):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.bin = SoftDelete(self.meta, self.clock)

    def gc_now(self) -> None:
        self.clock.advance(timedelta(seconds=1))
        self.collect(grace=timedelta(0))

    def body(self, repo: str, reference: str) -> bytes:
        if reference.startswith("sha256:"):
            return self.meta.manifest_by_digest(self.record.id, repo, reference).body
        return self.meta.manifest_by_tag(self.record.id, repo, reference).body


@pytest.fixture
def b(meta: Metadata, stores: BlobStores, clock: FakeClock, registry: RegistryRecord) -> Binning:
    binning = Binning(meta, stores, clock, registry)
    binning.bin.update(registry, enabled=True, days=7)
    return binning


def test_the_policy_is_checked_and_exclusive_with_retention(b: Binning) -> None:
    with pytest.raises(RequestInvalid, match="1 to 90"):
        b.bin.update(b.record, days=0)
    with pytest.raises(RequestInvalid, match="disable soft delete first"):
        b.retention.update(b.record, enabled=True)
    b.bin.update(b.record, enabled=False)
    b.retention.update(b.record, enabled=True)
    with pytest.raises(RequestInvalid, match="disable retention first"):
        b.bin.update(b.record, enabled=True)


def test_a_deleted_manifest_survives_gc_and_is_restored_byte_identical(b: Binning) -> None:
    digest = b.image("app", "v1", b"config", b"layer")
    body = b.body("app", "v1")
    b.manifests.delete_manifest(b.record, "app", digest)
    assert not b.exists("app", digest)
    (deleted,) = b.bin.manifests(b.record, "app")
    assert (deleted.digest, deleted.tags) == (digest, ("v1",))
    assert [(t.name, t.digest) for t in b.bin.tags(b.record, "app")] == [("v1", digest)]
    with pytest.raises(Denied, match="restore it"):
        b.manifests.put(b.record, "app", "again", body, OCI_MANIFEST)
    b.gc_now()
    assert b.stored(b"config") and b.stored(b"layer")
    b.bin.restore(b.record, "app", digest, "v1")
    assert b.body("app", "v1") == body
    assert b.linked("app", b"config") and b.linked("app", b"layer")
    assert b.bin.manifests(b.record, "app") == [] and b.bin.tags(b.record, "app") == []


def test_a_deleted_repository_is_listed_and_restored_one_tag_at_a_time(b: Binning) -> None:
    one = b.image("team/app", "v1", b"config 1", b"layer")
    two = b.image("team/app", "v2", b"config 2", b"layer")
    b.manifests.delete_repository(b.record, "team/app")
    assert not b.meta.repository_exists(b.record.id, "team/app")
    assert b.bin.repositories(b.record, None, 10).items == ["team/app"]
    b.gc_now()
    b.bin.restore(b.record, "team/app", one)  # the manifest alone, then its tag
    assert b.exists("team/app", one)
    b.bin.restore(b.record, "team/app", one, "v1")
    assert b.meta.manifest_by_tag(b.record.id, "team/app", "v1").digest == one
    assert [m.digest for m in b.bin.manifests(b.record, "team/app")] == [two]


def test_an_untagged_tag_is_restored_and_force_moves_an_existing_tag(b: Binning) -> None:
    one = b.image("app", "v1", b"config 1", b"layer")
    b.manifests.untag(b.record, "app", "v1")
    two = b.image("app", "v1", b"config 2", b"layer")
    with pytest.raises(Conflict, match="force"):
        b.bin.restore(b.record, "app", one, "v1")
    b.bin.restore(b.record, "app", one, "v1", force=True)
    assert b.meta.manifest_by_tag(b.record.id, "app", "v1").digest == one
    # The tag the restore moved is soft-deleted in turn.
    assert [(t.name, t.digest) for t in b.bin.tags(b.record, "app")] == [("v1", two)]


def test_a_restore_brings_back_the_manifest_and_tag_locks_as_they_were(b: Binning) -> None:
    digest = b.image("app", "v1", b"config", b"layer")
    b.manifests.put(b.record, "app", "v2", b.body("app", "v1"), OCI_MANIFEST)
    props = Properties(b.meta)
    props.update_manifest(b.record, "app", digest, {"read_enabled": False})
    props.update_tag(b.record, "app", "v1", {"read_enabled": False, "list_enabled": False})
    props.update_tag(b.record, "app", "v2", {"list_enabled": False})
    b.manifests.delete_manifest(b.record, "app", digest)
    b.bin.restore(b.record, "app", digest, "v1")
    assert props.manifest(b.record, "app", digest).locks == Locks(read_enabled=False)
    assert props.tag(b.record, "app", "v1").locks == Locks(read_enabled=False, list_enabled=False)
    b.bin.restore(b.record, "app", digest, "v2")  # a tag of a manifest that is back
    assert props.tag(b.record, "app", "v2").locks == Locks(list_enabled=False)


def test_an_index_needs_its_children_restored_first(b: Binning) -> None:
    child = b.image("app", "child", b"config", b"layer")
    index = b.index("app", "multi", child)
    b.manifests.delete_manifest(b.record, "app", index)
    b.manifests.delete_manifest(b.record, "app", child)
    with pytest.raises(ManifestBlobUnknown, match="child manifests first"):
        b.bin.restore(b.record, "app", index, "multi")
    b.bin.restore(b.record, "app", child)
    b.bin.restore(b.record, "app", index, "multi")
    assert b.exists("app", index)


def test_items_expire_after_the_days_in_force_then_gc_frees_the_blobs(b: Binning) -> None:
    digest = b.image("app", "v1", b"config", b"layer")
    b.manifests.delete_manifest(b.record, "app", digest)
    b.clock.advance(7 * DAY)
    b.bin.update(b.record, days=14)  # extends what is in the bin already
    assert b.bin.expire(b.record) == 0
    b.clock.advance(7 * DAY + timedelta(seconds=1))
    assert b.bin.expire(b.record) == 2  # the manifest and its tag
    b.gc_now()
    assert not b.stored(b"config") and not b.stored(b"layer")
