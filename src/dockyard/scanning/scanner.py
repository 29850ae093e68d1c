"""Scanning one image: its packages (from `packages_of`, the SBOM feature's inventory in
production), their findings in the vulnerability database, the report referrer pushed
beside it, and the scan stored with its `ScanCompleted` event in one transaction.

`packages_of(registry, repo, digest) -> list[Package]` is given at construction, so the
scanner knows nothing of layers: a test passes its own function."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.common.errors import ManifestUnknown, RegistryError
from dockyard.core.digests import is_digest
from dockyard.core.events import ScanCompleted
from dockyard.core.manifest_formats import IMAGE_TYPES, parse_manifest
from dockyard.core.manifests import Manifests
from dockyard.core.uploads import Uploads
from dockyard.metadata import scanning as rows
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.sbom.packages import Package
from dockyard.scanning.database import VulnDatabase
from dockyard.scanning.findings import Finding, worst
from dockyard.scanning.reports import counts, push_report, report_json

log = logging.getLogger(__name__)

_IMAGE_CONFIGS = (
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
)
PackagesOf = Callable[[RegistryRecord, str, str], list[Package]]
# Told of every scan once it is stored (the built-in quarantine writer).
AfterScan = Callable[[RegistryRecord, str, str, list[Finding]], None]


@dataclass(frozen=True)
class ScanOutcome:
    digest: str
    findings: list[Finding]
    report_digest: str | None


def scannable(record: ManifestRecord) -> bool:
    """An image manifest that is not itself an artifact about another (a signature, an
    SBOM, a report: those carry a `subject`) nor a non-image artifact. An index is not
    scanned: each of its platforms is, being pushed by digest before it."""
    if record.media_type not in IMAGE_TYPES:
        return False
    manifest = parse_manifest(record.body, record.media_type)
    if manifest.subject is not None:
        return False
    return manifest.config_media_type in _IMAGE_CONFIGS


class Scanner:
    def __init__(
        self,
        meta: Metadata,
        database: VulnDatabase,
        packages_of: PackagesOf,
        uploads: Uploads,
        manifests: Manifests,
        after_scan: AfterScan | None = None,
    ) -> None:
        self._meta = meta
        self._database = database
        self._packages_of = packages_of
        self._uploads = uploads
        self._manifests = manifests
        self._after_scan = after_scan

    def scan(self, registry: RegistryRecord, repo: str, digest: str) -> ScanOutcome | None:
        """Scan `repo@digest` now (in the calling thread, which must not be running an
        event loop); None for a manifest that is not a scannable image. The report
        referrer is best-effort: a repository locked against writes or out of quota
        keeps its findings without one (logged)."""
        record = self._meta.manifest_by_digest(registry.id, repo, digest)
        if record is None:
            raise ManifestUnknown(detail={"name": repo, "reference": digest})
        if not scannable(record):
            return None
        findings = self._database.match(self._packages_of(registry, repo, digest))
        report = report_json(repo, digest, self._meta.clock(), findings)
        report_digest: str | None
        try:
            report_digest = asyncio.run(
                push_report(self._uploads, self._manifests, registry, repo, record, report)
            )
        except RegistryError as error:
            log.warning("no scan report for %s@%s: %s", repo, digest, error.message)
            report_digest = None
        with self._meta.transaction() as tx:
            previous = rows.put_scan(
                tx,
                registry.id,
                digest,
                repo,
                worst(findings).word,
                [f.to_json() for f in findings],
                report_digest,
            )
            event = ScanCompleted(
                registry_id=registry.id,
                repository=repo,
                digest=digest,
                worst=worst(findings).word,
                findings=len(findings),
                counts=counts(findings),
                report_digest=report_digest,
            )
            tx.emit(*event.to_row())
        if previous is not None and previous[1] != report_digest:
            self._drop_report(registry, *previous)
        if self._after_scan is not None:
            self._after_scan(registry, repo, digest, findings)
        return ScanOutcome(digest, findings, report_digest)

    def _drop_report(self, registry: RegistryRecord, repo: str, digest: str) -> None:
        """Delete the report a newer scan replaced."""
        try:
            self._manifests.delete_manifest(registry, repo, digest)
        except RegistryError as error:
            log.warning("the replaced scan report %s stays: %s", digest, error.message)


@dataclass(frozen=True)
class ScanView:
    """A manifest's latest scan as the API and the CLI show it (None: not scanned)."""

    digest: str
    scan: rows.ScanRow | None


def latest_scan(meta: Metadata, registry: RegistryRecord, repo: str, reference: str) -> ScanView:
    """The latest scan of `repo:tag` or `repo@digest`, read without the pull policies
    (a refused image's findings are what its owner needs to see)."""
    if is_digest(reference):
        record = meta.manifest_by_digest(registry.id, repo, reference)
    else:
        record = meta.manifest_by_tag(registry.id, repo, reference)
    if record is None:
        raise ManifestUnknown(detail={"name": repo, "reference": reference})
    return ScanView(record.digest, rows.scan_of(meta, registry.id, record.digest))
