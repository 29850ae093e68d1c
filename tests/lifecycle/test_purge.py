"""`dockyard.lifecycle.purge`: acr purge's filters, --ago, --keep, --untagged and
--untagged-only, locks, a dry run that lists exactly what the real run deletes, and
schedules run by cron on a clock the test moves."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from test_retention import DAY, Lifecycle

from dockyard.common.errors import RequestInvalid
from dockyard.core.properties import Properties
from dockyard.lifecycle.purge import Purge, PurgeOptions, PurgeReport, PurgeSchedules, parse_filter
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from fake_clock import FakeClock


class Purging(Lifecycle):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.purge = Purge(self.meta, self.manifests, self.clock)

    def run(self, *filters: str, dry_run: bool = False, **options: object) -> PurgeReport:
        parsed = tuple(parse_filter(text) for text in filters)
        return self.purge.run(self.record, PurgeOptions(parsed, **options), dry_run=dry_run)


def names(report: PurgeReport) -> list[str]:
    return [
        f"{item.repository}:{item.tag}" if item.tag else f"{item.repository}@{item.digest}"
        for item in report.deleted
    ]


@pytest.fixture
def p(meta: Metadata, stores: BlobStores, clock: FakeClock, registry: RegistryRecord) -> Purging:
    return Purging(meta, stores, clock, registry)


def test_filters_ago_and_keep_choose_the_tags(p: Purging) -> None:
    for n in range(4):
        p.image("app", f"1.{n}", f"config {n}".encode(), b"layer")
        p.clock.advance(DAY)
    p.image("app", "latest", b"config latest", b"layer")
    p.image("other", "1.0", b"config other", b"layer")
    p.clock.advance(DAY)
    report = p.run("app:1\\..*", ago=timedelta(days=2), keep=1)
    # 1.0, 1.1 and 1.2 are older than 2 days; the newest of them (1.2) is kept.
    assert names(report) == ["app:1.0", "app:1.1"]
    assert p.meta.manifest_by_tag(p.record.id, "app", "1.2") is not None
    assert p.meta.manifest_by_tag(p.record.id, "other", "1.0") is not None
    # Tags only by default: the manifests stay, untagged.
    assert p.meta.manifest_by_digest(p.record.id, "app", report.deleted[0].digest) is not None


def test_untagged_deletes_what_the_tags_left_dangling_parents_first(p: Purging) -> None:
    amd = p.image("app", "amd", b"config amd", b"layer")
    arm = p.image("app", "arm", b"config arm", b"layer")
    index = p.index("app", "multi", amd, arm)
    kept_child = p.image("app", "kept-child", b"config kept", b"layer")
    p.index("app", "stays", kept_child)
    for tag in ("amd", "arm", "kept-child"):
        p.manifests.untag(p.record, "app", tag)
    p.clock.advance(DAY)
    report = p.run("app:multi", ago=timedelta(0), untagged=True)
    assert names(report) == ["app:multi", f"app@{index}", *sorted(f"app@{d}" for d in (amd, arm))]
    assert p.exists("app", kept_child)


def test_locked_items_are_skipped_and_reported(p: Purging) -> None:
    p.image("app", "locked", b"config 1", b"layer")
    manifest = p.image("app", "v2", b"config 2", b"layer")
    properties = Properties(p.meta)
    properties.update_tag(p.record, "app", "locked", {"write_enabled": False})
    properties.update_manifest(p.record, "app", manifest, {"delete_enabled": False})
    p.clock.advance(DAY)
    report = p.run("app:.*", ago=timedelta(0), untagged=True)
    assert names(report) == ["app:v2"]
    assert [(i.tag, i.digest) for i in report.locked] == [
        ("locked", report.locked[0].digest),
        (None, manifest),
    ]
    assert p.exists("app", manifest)


def test_a_dry_run_lists_exactly_what_the_real_run_deletes(p: Purging) -> None:
    for n in range(3):
        child = p.image("svc", f"c{n}", f"config {n}".encode(), b"layer")
        p.index("svc", f"i{n}", child)
        p.manifests.untag(p.record, "svc", f"c{n}")
    p.image("svc", "old", b"config old", b"layer")
    p.image("svc", "old", b"config newer", b"layer")  # leaves an untagged manifest
    p.clock.advance(2 * DAY)
    p.image("svc", "fresh", b"config fresh", b"layer")
    options = {"ago": timedelta(days=1), "untagged": True, "keep": 1}
    dry = p.run("svc:i.*", "svc:old", dry_run=True, **options)
    real = p.run("svc:i.*", "svc:old", **options)
    assert names(dry) == names(real) and len(real.deleted) > 3
    assert p.run("svc:i.*", "svc:old", dry_run=True, **options).deleted == []


def test_untagged_only_without_filters_covers_every_repository(p: Purging) -> None:
    a = p.image("a", "v1", b"config a", b"layer")
    b = p.image("b", "v1", b"config b", b"layer")
    p.manifests.untag(p.record, "a", "v1")
    p.image("b", "v1", b"config b2", b"layer")
    p.clock.advance(timedelta(seconds=1))
    report = p.run(untagged_only=True)
    assert names(report) == [f"a@{a}", f"b@{b}"]
    assert not p.meta.repository_exists(p.record.id, "a")  # with its last manifest


def test_options_are_checked() -> None:
    with pytest.raises(RequestInvalid, match="filter"):
        PurgeOptions()
    with pytest.raises(RequestInvalid, match="REPOSITORY-REGEX:TAG-REGEX"):
        parse_filter("no-colon")
    with pytest.raises(RequestInvalid, match="regular expression"):
        parse_filter("app:(")


def test_schedules_run_when_cron_says_once_each(p: Purging) -> None:
    schedules = PurgeSchedules(p.meta, p.purge, p.clock)
    p.clock.now = p.clock.now.replace(hour=0, minute=30, second=0, microsecond=0)
    options = PurgeOptions((parse_filter("app:.*"),), ago=timedelta(0))
    schedule = schedules.add(p.record, "nightly", "0 1 * * *", options)
    assert schedule.next_run_at == p.clock.now.replace(hour=1, minute=0)
    with pytest.raises(RequestInvalid, match="cron"):
        schedules.add(p.record, "bad", "every night", options)
    with pytest.raises(RequestInvalid, match="has a purge schedule"):
        schedules.add(p.record, "nightly", "0 2 * * *", options)
    p.image("app", "v1", b"config", b"layer")
    assert schedules.run_due() == []
    p.clock.advance(timedelta(minutes=31))
    ran = schedules.run_due()
    assert [(s.name, names(r)) for _, s, r in ran] == [("nightly", ["app:v1"])]
    assert schedules.run_due() == []  # claimed: the next run is tomorrow
    (listed,) = schedules.list(p.record)
    assert listed.next_run_at == schedule.next_run_at + DAY
    assert listed.last_result == '{"tagsDeleted":1,"manifestsDeleted":0,"locked":0}'
    schedules.remove(p.record, "nightly")
    assert schedules.list(p.record) == []
