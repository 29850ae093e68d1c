"""`dockyard.core.garbage`: which links and blobs a run removes and when (a clock the test
moves), dry runs, and the race between a run and an upload of the same digest, played in
the bad order in-process; on a real SQLite `Metadata` and filesystem blob stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from core_registry import EXPIRY, GRACE, Registry, body_of, digest_of

from dockyard.core import garbage as garbage_module
from dockyard.core.garbage import GarbageCollector, GarbageReport
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from fake_clock import FakeClock


@pytest.fixture
def reg(meta: Metadata, stores: BlobStores, clock: FakeClock, registry: RegistryRecord) -> Registry:
    return Registry(meta, stores, clock, registry)


def test_an_unreferenced_blob_is_kept_for_the_grace_period_then_removed(reg: Registry) -> None:
    reg.blob(b"pushed ahead of its manifest")
    reg.clock.advance(GRACE - timedelta(seconds=1))
    assert reg.collect() == GarbageReport()
    assert reg.linked("app", b"pushed ahead of its manifest")
    reg.clock.advance(timedelta(seconds=2))
    assert reg.collect() == GarbageReport(links=1, blobs=1, bytes=28)
    assert not reg.linked("app", b"pushed ahead of its manifest")
    assert not reg.stored(b"pushed ahead of its manifest")
    assert reg.collect() == GarbageReport()


def test_referenced_blobs_stay_and_a_deleted_manifest_frees_them_after_the_grace(
    reg: Registry,
) -> None:
    digest = reg.image("app", "v1", b"config", b"layer one", b"layer two")
    reg.clock.advance(timedelta(days=30))
    assert reg.collect() == GarbageReport()
    reg.manifests.delete_manifest(reg.record, "app", digest)
    # A client pushing the image again may have found its blobs with HEAD just now: the
    # grace period counts from the delete, not from the push a month ago.
    assert reg.collect() == GarbageReport()
    reg.clock.advance(GRACE + timedelta(seconds=1))
    assert reg.collect() == GarbageReport(links=3, blobs=3, bytes=6 + 9 + 9)
    for data in (b"config", b"layer one", b"layer two"):
        assert not reg.stored(data)


def test_uploading_a_linked_blob_again_restarts_its_grace(reg: Registry) -> None:
    reg.blob(b"layer")
    reg.clock.advance(GRACE * 2)
    reg.blob(b"layer")  # pushed again for a manifest about to arrive
    assert reg.collect() == GarbageReport()
    assert reg.linked("app", b"layer")


def test_a_mounted_blob_stays_while_any_repository_needs_it(reg: Registry) -> None:
    reg.image("source", "v1", b"config", b"shared layer")
    assert reg.blobs.mount(reg.record, "target", digest_of(b"shared layer"), "source")
    reg.blob(b"target config", "target")
    reg.clock.advance(GRACE * 2)
    # target's link is unreferenced there: it goes; the blob stays for source.
    assert reg.collect() == GarbageReport(links=2, blobs=1, bytes=13)
    assert not reg.linked("target", b"shared layer")
    assert reg.linked("source", b"shared layer")
    assert reg.stored(b"shared layer")
    reg.manifests.delete_repository(reg.record, "source")
    assert reg.collect() == GarbageReport(blobs=2, bytes=6 + 12)
    assert not reg.stored(b"shared layer") and not reg.stored(b"config")


def test_a_dry_run_reports_the_same_and_changes_nothing(reg: Registry) -> None:
    kept = reg.image("app", "v1", b"config", b"kept layer")
    reg.blob(b"garbage one")
    reg.blob(b"garbage two", "other")
    reg.blob(b"kept layer", "other")  # its blob stays: app references it
    state = asyncio.run(reg.uploads.start(reg.record, "app"))
    reg.clock.advance(EXPIRY + timedelta(seconds=1))
    expected = GarbageReport(links=3, blobs=2, bytes=22, uploads=1)
    assert reg.collect(dry_run=True) == expected
    assert reg.collect(dry_run=True) == expected
    assert reg.linked("other", b"kept layer") and reg.stored(b"garbage one")
    assert reg.meta.upload(state.id) is not None
    assert reg.collect() == expected
    assert reg.collect(dry_run=True) == GarbageReport()
    assert reg.manifests.get(reg.record, "app", "v1").digest == kept
    assert reg.meta.upload(state.id) is None


def test_a_run_for_one_registry_leaves_the_others_alone(
    reg: Registry, meta: Metadata, stores: BlobStores, clock: FakeClock
) -> None:
    with meta.transaction() as tx:
        other = Registry(meta, stores, clock, tx.create_registry("fabrikam", "fabrikam.example"))
    reg.blob(b"mine")
    other.blob(b"theirs")
    clock.advance(GRACE * 2)
    assert reg.collect(registry=reg.record) == GarbageReport(links=1, blobs=1, bytes=4)
    assert other.stored(b"theirs")
    assert reg.collect() == GarbageReport(links=1, blobs=1, bytes=6)
    assert not other.stored(b"theirs")


def test_runs_work_in_batches(reg: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(garbage_module, "BATCH", 3)
    blobs = [f"blob {n}".encode() for n in range(10)]
    for data in blobs:
        reg.blob(data, f"repo{len(data) % 2}")
    reg.image("app", "v1", b"config", blobs[0])
    reg.clock.advance(GRACE * 2)
    assert reg.collect() == GarbageReport(links=10, blobs=9, bytes=9 * 6)
    assert [reg.stored(data) for data in blobs] == [True] + [False] * 9


def test_the_collector_pauses_after_each_batch_for_its_lock_share(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With lock_share 0.25 it rests three times as long as each batch took, so writers
    waiting for the lock get it between batches; with 1 it never rests."""
    monkeypatch.setattr(garbage_module, "BATCH", 3)
    for n in range(7):
        reg.blob(f"garbage {n}".encode())
    reg.clock.advance(GRACE * 2)
    ticks = iter(range(1000))
    rests: list[float] = []
    collector = GarbageCollector(
        reg.meta,
        BlobStores(reg.store.root.parent),
        reg.uploads,
        reg.clock,
        0.25,
        sleep=rests.append,
        timer=lambda: float(next(ticks)),
    )
    assert collector.collect(GRACE, EXPIRY, reg.record).blobs == 7
    # 3 + 3 + 1 links, then 3 + 3 + 1 blobs: six batches, each "took" one tick.
    assert rests == [3.0] * 6
    with pytest.raises(ValueError, match="lock_share"):
        GarbageCollector(reg.meta, BlobStores(reg.store.root.parent), reg.uploads, reg.clock, 0)


def test_batches_of_links_span_repositories_and_skip_other_registries(
    reg: Registry,
    meta: Metadata,
    stores: BlobStores,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(garbage_module, "BATCH", 3)
    with meta.transaction() as tx:
        other = Registry(meta, stores, clock, tx.create_registry("fabrikam", "fabrikam.example"))
    garbage, kept = [], []
    for n in range(5):  # the registries' repositories interleave in id order
        repo = f"repo{n}"
        garbage += [f"{repo} blob {i}".encode() for i in range(n)]
        for data in garbage[len(garbage) - n :]:
            reg.blob(data, repo)
        kept.append(f"{repo} config".encode())
        reg.image(repo, "v1", kept[-1])
        other.blob(f"theirs {n}".encode(), repo)
    clock.advance(GRACE * 2)
    assert reg.collect(registry=reg.record) == GarbageReport(
        links=10, blobs=10, bytes=sum(map(len, garbage))
    )
    assert not any(reg.stored(data) for data in garbage)
    assert all(reg.stored(data) for data in kept)
    assert all(other.stored(f"theirs {n}".encode()) for n in range(5))


# -- the race with uploads -------------------------------------------------------------


class Interleaving:
    """A blob store that runs `between` once, right after the next publication of
    `digest`: what another process may do before the uploader commits the blob's row."""

    def __init__(self, inner: BlobStore) -> None:
        self._inner = inner
        self.between: Callable[[], None] | None = None

    def commit_upload(self, upload_id: str, digest: str) -> int:
        size = self._inner.commit_upload(upload_id, digest)
        step, self.between = self.between, None
        if step is not None:
            step()
        return size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def racing(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord, tmp_path: Any
) -> tuple[Registry, Interleaving]:
    store = Interleaving(BlobStores(tmp_path / "racing").for_registry(registry.name))
    stores = BlobStores(make=lambda name: store)  # type: ignore[arg-type, return-value]
    return Registry(meta, stores, clock, registry), store


def test_collection_between_publication_and_commit_never_leaves_a_row_without_bytes(
    racing: tuple[Registry, Interleaving],
) -> None:
    reg, store = racing
    data = b"the same layer, pushed again"
    reg.blob(data, "old")
    reg.blobs.unlink(reg.record, "old", digest_of(data))  # its row is garbage now
    # An upload of the same digest publishes (the bytes are there already: the store
    # keeps them), then, before its row commits, a run removes row and bytes.
    collected: list[GarbageReport] = []
    store.between = lambda: collected.append(reg.collect(timedelta(0)))
    reg.blob(data, "new")
    assert collected == [GarbageReport(blobs=1, bytes=len(data))]
    # The commit found its bytes gone, published them again from the upload it kept,
    # and only then committed: the blob is whole, and nothing is left of the upload.
    assert reg.stored(data) and reg.linked("new", data)
    location = reg.blobs.locate(reg.record, "new", digest_of(data))
    with asyncio.run(location.open()) as source:
        assert source.read() == data
    assert list(reg.store.upload_ids()) == []


def test_a_chunked_upload_survives_a_collection_between_publication_and_commit(
    racing: tuple[Registry, Interleaving],
) -> None:
    reg, store = racing
    data = b"chunked " * 100
    reg.blob(data, "old")
    reg.blobs.unlink(reg.record, "old", digest_of(data))
    state = asyncio.run(reg.uploads.start(reg.record, "new"))
    asyncio.run(reg.uploads.append(reg.record, "new", state.id, body_of(data[:300])))
    store.between = lambda: reg.collect(timedelta(0))
    asyncio.run(
        reg.uploads.finish(reg.record, "new", state.id, digest_of(data), body_of(data[300:]))
    )
    assert reg.stored(data) and reg.linked("new", data)
    assert reg.meta.upload(state.id) is None


def test_bytes_published_by_a_process_that_died_before_the_commit_are_swept(
    reg: Registry,
) -> None:
    data = b"published, never committed"
    digest = digest_of(data)
    state = asyncio.run(reg.uploads.start(reg.record, "app"))
    asyncio.run(reg.uploads.append(reg.record, "app", state.id, body_of(data)))
    # What `finish` does up to the row's commit, and then the process is killed.
    with reg.meta.transaction() as tx:
        tx.set_upload_digest(state.id, digest)
    reg.store.commit_upload(state.id, digest)
    assert reg.store.stat(digest) == len(data)
    reg.clock.advance(EXPIRY - timedelta(seconds=1))
    assert reg.collect(timedelta(0)) == GarbageReport()
    assert reg.store.stat(digest) == len(data)  # the session may still finish
    reg.clock.advance(timedelta(seconds=2))
    assert reg.collect(timedelta(0)).uploads == 1
    assert reg.store.stat(digest) is None
    assert list(reg.store.upload_ids()) == []


def test_sweeping_a_dead_upload_keeps_bytes_another_upload_committed(reg: Registry) -> None:
    data = b"pushed twice at once"
    digest = digest_of(data)
    state = asyncio.run(reg.uploads.start(reg.record, "app"))
    asyncio.run(reg.uploads.append(reg.record, "app", state.id, body_of(data)))
    with reg.meta.transaction() as tx:
        tx.set_upload_digest(state.id, digest)
    reg.store.commit_upload(state.id, digest)  # then dies
    reg.clock.advance(timedelta(minutes=1))
    reg.image("app", "v1", data)  # another client's push of the same blob commits
    reg.clock.advance(EXPIRY)
    assert reg.collect(timedelta(0)).uploads == 1
    assert reg.stored(data) and reg.linked("app", data)


def test_a_cancelled_upload_takes_its_unclaimed_publication_with_it(reg: Registry) -> None:
    data = b"cancelled mid-commit"
    digest = digest_of(data)
    state = asyncio.run(reg.uploads.start(reg.record, "app"))
    asyncio.run(reg.uploads.append(reg.record, "app", state.id, body_of(data)))
    with reg.meta.transaction() as tx:
        tx.set_upload_digest(state.id, digest)
    reg.store.commit_upload(state.id, digest)
    asyncio.run(reg.uploads.cancel(reg.record, "app", state.id))
    assert reg.store.stat(digest) is None
    assert list(reg.store.upload_ids()) == []
