"""A registry's scanning switches (`ScanPolicies`: scan on push, and the vulnerability
pull policy's severity, allowlist and repository patterns) and the pull policy itself
(`VulnerabilityPullPolicy`, Harbor's "prevent vulnerable images from running"), asked
by core on every manifest GET (`core/policies.py`).

Cheap on the warm path: the registry's policy is a read of the configuration cache and
each manifest's verdict a read of the content cache (`Metadata.cached`), both plain
dict lookups until a policy changes or a scan is stored (the scan tables' triggers bump
the counters the caches watch, migration 0020), on any process or node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from fnmatch import fnmatchcase

from sqlalchemy import Connection

from dockyard.common.errors import Denied, RequestInvalid
from dockyard.metadata import scanning as rows
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.metadata.scanning import PolicyRow
from dockyard.metadata.store import Metadata
from dockyard.scanning.findings import Finding, worst_refused
from dockyard.scanning.severity import Severity

_MAX_ENTRIES = 1000


class ScanPolicies:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def get(self, registry_id: int) -> PolicyRow:
        """The policy as the configuration cache keeps it: for every manifest GET. A
        request sees the snapshot it began with, its own changes included only after."""
        return self._meta.cached(
            ("scan-policy", registry_id), rows.policy_loader(registry_id), config=True
        )

    def current(self, registry_id: int) -> PolicyRow:
        """The policy read now (for showing and changing it)."""
        with self._meta.connection() as conn:
            return rows.policy_loader(registry_id)(conn)

    def update(
        self,
        registry: RegistryRecord,
        scan_on_push: bool | None = None,
        block_enabled: bool | None = None,
        block_severity: str | None = None,
        allowlist: list[str] | None = None,
        repositories: list[str] | None = None,
        quarantine_writer: bool | None = None,
    ) -> PolicyRow:
        """Change what is given (None leaves a setting as it is); the policy now."""
        policy = self.current(registry.id)
        if scan_on_push is not None:
            policy = replace(policy, scan_on_push=scan_on_push)
        if quarantine_writer is not None:
            policy = replace(policy, quarantine_writer=quarantine_writer)
        if block_enabled is not None:
            policy = replace(policy, block_enabled=block_enabled)
        if block_severity is not None:
            try:
                severity = Severity.named(block_severity)
            except ValueError as error:
                raise RequestInvalid(str(error)) from None
            if severity == Severity.NONE:
                raise RequestInvalid("the policy's severity must be unknown or above")
            policy = replace(policy, block_severity=severity.word)
        if allowlist is not None:
            policy = replace(policy, allowlist=_entries("allowlist", allowlist))
        if repositories is not None:
            policy = replace(policy, repositories=_entries("repositories", repositories))
        with self._meta.transaction() as tx:
            rows.put_policy(tx, registry.id, policy)
        return policy


def _entries(name: str, values: list[str]) -> tuple[str, ...]:
    if len(values) > _MAX_ENTRIES or not all(
        isinstance(v, str) and v.strip() and len(v) <= 255 for v in values
    ):
        raise RequestInvalid(f"{name}: at most {_MAX_ENTRIES} non-empty names")
    return tuple(dict.fromkeys(v.strip() for v in values))


def applies(policy: PolicyRow, repo: str) -> bool:
    """Whether the pull policy covers `repo`: on, and no patterns or one that matches
    (shell-style: `*` matches across `/` too)."""
    if not policy.block_enabled:
        return False
    return not policy.repositories or any(fnmatchcase(repo, p) for p in policy.repositories)


class VulnerabilityPullPolicy:
    """Refuses pulls of a scanned image whose findings reach the registry's severity,
    advisories in the allowlist aside, with `DENIED` naming the worst. An image not
    scanned (yet), an index and an artifact pass: an index's platforms are judged when
    they are pulled, as Harbor does."""

    def __init__(self, meta: Metadata, policies: ScanPolicies) -> None:
        self._meta = meta
        self._policies = policies

    def check_pull(
        self, registry: RegistryRecord, repo: str, reference: str, record: ManifestRecord
    ) -> None:
        policy = self._policies.get(registry.id)
        if not applies(policy, repo):
            return
        refused = self._meta.cached(
            ("scan-verdict", registry.id, record.digest, policy),
            self._judge(registry, record, policy),
        )
        if refused is not None:
            raise Denied(
                f"{repo}@{record.digest} has {refused.describe()}: this registry's "
                f"vulnerability policy refuses pulls of images with {policy.block_severity} "
                "or worse findings",
                detail={
                    "name": repo,
                    "digest": record.digest,
                    "advisory": refused.advisory,
                    "severity": refused.severity.word,
                },
            )

    def _judge(
        self, registry: RegistryRecord, record: ManifestRecord, policy: PolicyRow
    ) -> Callable[[Connection], Finding | None]:
        load_scan = rows.scan_loader(registry.id, record.digest)

        def judge(conn: Connection) -> Finding | None:
            scan = load_scan(conn)
            if scan is None:
                return None
            return verdict([Finding.from_json(f) for f in scan.findings], policy)

        return judge


def verdict(findings: list[Finding], policy: PolicyRow) -> Finding | None:
    """The finding that makes `policy` refuse an image, or None."""
    return worst_refused(findings, Severity.named(policy.block_severity), policy.allowlist)
