"""`acr purge`'s semantics: delete the tags a filter matches that were last changed
before a moment, optionally the manifests left untagged, on demand (`dockyard purge`)
or on a cron schedule that the background worker keeps (`PurgeSchedules`).

- A filter is `<repository regex>:<tag regex>`, each matching the whole name (as
  acr-cli anchors them); several filters add up.
- `ago`: only tags (and manifests) last updated before now - ago are deleted.
- By default only tags go (an untag: their manifests stay). `untagged` also deletes the
  manifests of the matched repositories that are dangling once those tags are gone
  (`metadata.lifecycle`: no tag, no parent index that stays, no subject that stays);
  `untagged_only` deletes only those, in every repository if no filter is given.
- `keep`: per repository, the N most recently updated of the tags to delete stay.
- Locks: an item whose delete a lock refuses (`core.locks`) is skipped and reported.

A run first makes a plan from one read of the registry (`plan`, pure), then deletes its
items one transaction each, in an order where every delete finds its manifest dangling:
an index before its children, a subject before its referrers. A dry run reports the plan,
which is exactly what the real run deletes unless the registry changes in between (each
delete re-checks, in its transaction, that the item still qualifies)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from croniter import croniter

from dockyard.common.clock import Clock
from dockyard.common.errors import Locked, ManifestUnknown, RequestInvalid
from dockyard.core import locks
from dockyard.core.manifests import Manifests
from dockyard.metadata.lifecycle import Inventory, InventoryManifest, inventory
from dockyard.metadata.purge_schedules import (
    PurgeSchedule,
    PurgeScheduleWrites,
    due_schedules,
    schedules,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata


@dataclass(frozen=True)
class PurgeFilter:
    repository: re.Pattern[str]
    tag: re.Pattern[str]

    def __str__(self) -> str:
        return f"{self.repository.pattern}:{self.tag.pattern}"


def parse_filter(text: str) -> PurgeFilter:
    """`<repository regex>:<tag regex>`, split at the first colon (repository names have
    none)."""
    repository, colon, tag = text.partition(":")
    if not colon or not repository or not tag:
        raise RequestInvalid(f"a filter is REPOSITORY-REGEX:TAG-REGEX, not {text!r}")
    try:
        return PurgeFilter(re.compile(repository), re.compile(tag))
    except re.error as exc:
        raise RequestInvalid(f"invalid regular expression in filter {text!r}: {exc}") from None


@dataclass(frozen=True)
class PurgeOptions:
    filters: tuple[PurgeFilter, ...] = ()
    ago: timedelta = timedelta(0)
    untagged: bool = False
    untagged_only: bool = False
    keep: int = 0

    def __post_init__(self) -> None:
        if not self.filters and not self.untagged_only:
            raise RequestInvalid("give at least one --filter (or --untagged-only)")
        if self.keep < 0:
            raise RequestInvalid(f"keep must be 0 or more, not {self.keep}")


@dataclass(frozen=True)
class PurgeItem:
    """A tag (`tag` set) or a manifest to delete."""

    repository: str
    digest: str
    updated_at: datetime
    tag: str | None = None


@dataclass
class PurgeReport:
    deleted: list[PurgeItem] = field(default_factory=list)  # or would be, in a dry run
    locked: list[PurgeItem] = field(default_factory=list)  # skipped: a lock refuses


def plan(repositories: list[Inventory], options: PurgeOptions, now: datetime) -> PurgeReport:
    """What a purge deletes, in the order it must (a pure function of one read)."""
    report = PurgeReport()
    before = now - options.ago
    for repo in repositories:
        filters = [f for f in options.filters if f.repository.fullmatch(repo.name)]
        if not filters and (options.filters or not options.untagged_only):
            continue
        gone: set[str] = set()
        if not options.untagged_only:
            matched = sorted(
                (
                    tag
                    for tag in repo.tags
                    if tag.updated_at < before and any(f.tag.fullmatch(tag.name) for f in filters)
                ),
                key=lambda tag: (tag.updated_at, tag.name),
                reverse=True,
            )[options.keep :]
            for tag in sorted(matched, key=lambda tag: tag.name):
                item = PurgeItem(repo.name, tag.digest, tag.updated_at, tag.name)
                try:
                    locks.check_tag_delete(repo.name, repo.locks, tag.name, tag.locks)
                except Locked:
                    report.locked.append(item)
                    continue
                report.deleted.append(item)
                gone.add(tag.name)
        if options.untagged or options.untagged_only:
            _plan_untagged(repo, gone, before, report)
    return report


def _plan_untagged(
    repo: Inventory, gone_tags: set[str], before: datetime, report: PurgeReport
) -> None:
    """The manifests dangling once `gone_tags` are deleted: untagged, updated before
    `before`, not locked, and neither the child of an index nor a referrer of a subject
    that stays."""
    by_digest = {m.digest: m for m in repo.manifests}
    tagged = {tag.digest for tag in repo.tags if tag.name not in gone_tags}
    candidates = {
        m.digest for m in repo.manifests if m.digest not in tagged and m.updated_at < before
    }
    locked = set()
    for digest in candidates:
        try:
            locks.check_manifest_delete(repo.name, repo.locks, digest, by_digest[digest].locks, {})
        except Locked:
            locked.add(digest)
    for digest in sorted(locked & _dangling(repo, candidates)):
        report.locked.append(PurgeItem(repo.name, digest, by_digest[digest].updated_at))
    for manifest in _delete_order(repo.manifests, _dangling(repo, candidates - locked)):
        report.deleted.append(PurgeItem(repo.name, manifest.digest, manifest.updated_at))


def _dangling(repo: Inventory, candidates: set[str]) -> set[str]:
    """Those of `candidates` left once every manifest that stays has kept its children
    and its referrers (repeated: a kept index keeps its own children)."""
    deletable = set(candidates)
    while True:
        staying = {m.digest for m in repo.manifests} - deletable
        kept = set()
        for manifest in repo.manifests:
            if manifest.digest in staying:
                kept |= deletable.intersection(manifest.children)
            elif manifest.subject in staying:
                kept.add(manifest.digest)
        if not kept:
            return deletable
        deletable -= kept


def _delete_order(
    manifests: tuple[InventoryManifest, ...], deletable: set[str]
) -> list[InventoryManifest]:
    """Parents before their children, subjects before their referrers: each delete then
    finds its manifest dangling."""
    waiting = {m.digest: m for m in manifests if m.digest in deletable}
    blockers = {digest: set() for digest in waiting}
    for manifest in waiting.values():
        for child in manifest.children:
            if child in blockers:
                blockers[child].add(manifest.digest)
        if manifest.subject in waiting:
            blockers[manifest.digest].add(manifest.subject)
    ordered: list[InventoryManifest] = []
    while waiting:
        ready = sorted(d for d in waiting if not blockers[d] & waiting.keys())
        if not ready:  # a cycle cannot be pushed; never loop on bad data
            ready = sorted(waiting)
        for digest in ready:
            ordered.append(waiting.pop(digest))
    return ordered


class Purge:
    def __init__(self, meta: Metadata, manifests: Manifests, clock: Clock) -> None:
        self._meta = meta
        self._manifests = manifests
        self._clock = clock

    def run(
        self, registry: RegistryRecord, options: PurgeOptions, dry_run: bool = False
    ) -> PurgeReport:
        planned = plan(inventory(self._meta, registry.id), options, self._clock())
        if dry_run:
            return planned
        report = PurgeReport(locked=list(planned.locked))
        for item in planned.deleted:
            try:
                if item.tag is not None:
                    self._manifests.untag(registry, item.repository, item.tag)
                elif not self._manifests.delete_dangling(registry, item.repository, item.digest):
                    continue
            except Locked:
                report.locked.append(item)
                continue
            except ManifestUnknown:  # deleted meanwhile
                continue
            report.deleted.append(item)
        return report


_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


def next_run(cron: str, after: datetime) -> datetime:
    """The first time after `after` that a cron expression (five fields, UTC) names."""
    if not croniter.is_valid(cron) or len(cron.split()) != 5:
        raise RequestInvalid(
            f"invalid cron expression {cron!r}: five fields, minute hour day month weekday, "
            "e.g. '0 1 * * *' (01:00 UTC every day)"
        )
    return croniter(cron, after).get_next(datetime)


def schedule_options(schedule: PurgeSchedule) -> PurgeOptions:
    return PurgeOptions(
        filters=tuple(parse_filter(text) for text in schedule.filters),
        ago=timedelta(seconds=schedule.ago_seconds),
        untagged=schedule.untagged,
        untagged_only=schedule.untagged_only,
        keep=schedule.keep,
    )


def report_summary(report: PurgeReport) -> str:
    """What a scheduled run did, as kept in `last_result`."""
    return orjson.dumps(
        {
            "tagsDeleted": sum(item.tag is not None for item in report.deleted),
            "manifestsDeleted": sum(item.tag is None for item in report.deleted),
            "locked": len(report.locked),
        }
    ).decode()


class PurgeSchedules:
    """Purges that the background worker runs on a cron schedule (ACR runs `acr purge` as
    a scheduled task). Each due schedule is claimed by moving its next run on first, so
    several workers run it once."""

    def __init__(self, meta: Metadata, purge: Purge, clock: Clock) -> None:
        self._meta = meta
        self._purge = purge
        self._clock = clock

    def add(
        self, registry: RegistryRecord, name: str, cron: str, options: PurgeOptions
    ) -> PurgeSchedule:
        if not _SCHEDULE_NAME.fullmatch(name):
            raise RequestInvalid(
                f"invalid schedule name {name!r}: letters, digits and hyphens, at most 64"
            )
        now = self._clock()
        schedule = PurgeSchedule(
            id=0,
            registry_id=registry.id,
            name=name,
            cron=cron,
            filters=tuple(str(f) for f in options.filters),
            ago_seconds=int(options.ago.total_seconds()),
            untagged=options.untagged,
            untagged_only=options.untagged_only,
            keep=options.keep,
            next_run_at=next_run(cron, now),
            last_run_at=None,
            last_result=None,
        )
        with self._meta.transaction() as tx:
            if not PurgeScheduleWrites(tx).add(schedule):
                raise RequestInvalid(f"registry {registry.name} has a purge schedule {name!r}")
        return schedule

    def list(self, registry: RegistryRecord) -> list[PurgeSchedule]:
        return schedules(self._meta, registry.id)

    def remove(self, registry: RegistryRecord, name: str) -> None:
        with self._meta.transaction() as tx:
            if not PurgeScheduleWrites(tx).remove(registry.id, name):
                raise RequestInvalid(f"registry {registry.name} has no purge schedule {name!r}")

    def run_due(self) -> list[tuple[RegistryRecord, PurgeSchedule, PurgeReport]]:
        """Run every schedule that is due now (in every registry), each at most once."""
        now = self._clock()
        registries = {record.id: record for record in self._meta.registries()}
        ran = []
        for schedule in due_schedules(self._meta, now):
            with self._meta.transaction() as tx:
                claimed = PurgeScheduleWrites(tx).claim(schedule, next_run(schedule.cron, now))
            if not claimed:
                continue
            registry = registries[schedule.registry_id]
            report = self._purge.run(registry, schedule_options(schedule))
            with self._meta.transaction() as tx:
                PurgeScheduleWrites(tx).record_result(schedule.id, report_summary(report))
            ran.append((registry, schedule, report))
        return ran
