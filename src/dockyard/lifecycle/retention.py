"""The retention policy for untagged manifests (ACR's `UntaggedManifests` policy): per
registry, on or off, and a number of days (0-365, default 7; 0 deletes at the next run).

How it works, as on ACR: when a manifest loses its last tag, its delete is scheduled at
that time + days (`manifests.untagged_at` records the time); tagging it again cancels
the schedule, and so does turning the policy off (only manifests untagged after the
policy was last turned on are deleted; the days in force at the run count). The
background worker deletes what is due (`apply`), each delete one transaction that writes
its outbox event like any delete; a repository goes with its last manifest.

Decisions where ACR says nothing or differs:
- OCI manifests and indexes are covered, not only Docker's types (ACR's limitation).
- A manifest an index of its repository still references is kept: its clock starts when
  the last such index goes. A referrer whose subject is in the repository is kept too.
- A manifest pushed by digest, never tagged, is not scheduled (ACR deletes on untag
  events only); an index's children are, once the index is gone.
- Locked manifests (writeEnabled=false or deleteEnabled=false on the manifest, its tags or
  writeEnabled=false on the repository) are skipped, and deleted at a later run once
  unlocked if still due.
- It cannot be on together with the soft delete policy (as on ACR).
- Only Premium allows it (`tiers.usage.require_feature`, checked in the transaction
  that turns it on).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dockyard.common.clock import Clock
from dockyard.common.errors import Locked, RequestInvalid
from dockyard.core.manifests import Manifests
from dockyard.metadata.lifecycle import LifecycleWrites, Policies, Policy, untagged_manifests
from dockyard.metadata.lifecycle import policies as read_policies
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.tiers.tiers import Feature
from dockyard.tiers.usage import require_feature

MAX_DAYS = 365
# Candidates read per query; each is then deleted in a transaction of its own.
BATCH = 100


@dataclass(frozen=True)
class RetentionReport:
    deleted: list[tuple[str, str]]  # (repository, digest)
    locked: list[tuple[str, str]]


def is_due(policy: Policy, untagged_at: datetime | None, now: datetime) -> bool:
    """Whether a manifest untagged at `untagged_at` is due for deletion under `policy`."""
    return (
        policy.enabled_at is not None
        and untagged_at is not None
        and policy.enabled_at <= untagged_at <= now - timedelta(days=policy.days)
    )


class Retention:
    def __init__(self, meta: Metadata, manifests: Manifests, clock: Clock) -> None:
        self._meta = meta
        self._manifests = manifests
        self._clock = clock

    def policy(self, registry: RegistryRecord) -> Policy:
        return read_policies(self._meta, registry.id).retention

    def update(
        self, registry: RegistryRecord, enabled: bool | None = None, days: int | None = None
    ) -> Policy:
        """Turn the policy on or off and/or change its days. Turning it on (again) starts
        a new period: manifests untagged before are not affected."""
        if days is not None and not 0 <= days <= MAX_DAYS:
            raise RequestInvalid(f"retention days must be 0 to {MAX_DAYS}, not {days}")
        with self._meta.transaction() as tx:
            if enabled:
                require_feature(tx, registry, Feature.RETENTION)
            writes = LifecycleWrites(tx)
            current = writes.policies(registry.id)
            policy = current.retention
            if enabled and current.soft_delete.enabled:
                raise RequestInvalid(
                    "the retention policy cannot be enabled while the soft delete policy is "
                    "on; disable soft delete first"
                )
            if enabled is not None and enabled != policy.enabled:
                policy = replace(policy, enabled_at=tx.now if enabled else None)
            if days is not None:
                policy = replace(policy, days=days)
            writes.set_policies(registry.id, Policies(policy, current.soft_delete))
        return policy

    def apply(self, registry: RegistryRecord) -> RetentionReport:
        """Delete the registry's untagged manifests that are due now."""
        now = self._clock()
        report = RetentionReport([], [])
        policy = self.policy(registry)
        if policy.enabled_at is None:
            return report
        while True:
            found = untagged_manifests(
                self._meta,
                registry.id,
                policy.enabled_at,
                now - timedelta(days=policy.days),
                BATCH,
            )
            deleted_before = len(report.deleted)
            for manifest in found:
                key = (manifest.repository, manifest.digest)
                try:
                    deleted = self._manifests.delete_dangling(
                        registry,
                        manifest.repository,
                        manifest.digest,
                        lambda policies, untagged_at: is_due(policies.retention, untagged_at, now),
                    )
                except Locked:  # locked since the query: a later run tries again
                    if key not in report.locked:
                        report.locked.append(key)
                    continue
                if deleted:
                    report.deleted.append(key)
            # Deleted rows leave the query, so the next one starts on fresh candidates.
            if len(found) < BATCH or len(report.deleted) == deleted_before:
                return report
