"""What each portal page shows, read through the services the APIs use (never their
HTTP): a registry's tier and usage (the tiers feature), a page of repositories or tags
(keyset pages on the database's indexes), a manifest with its config, layers, referrers,
signatures (the signing feature's verification), scan findings (the scanning feature)
and quarantine state (the quarantine feature).

Never decides who may see what: `access.py` does, and `pages.py` asks it first."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.core.listings import Page
from dockyard.core.manifest_formats import INDEX_TYPES
from dockyard.metadata.attributes import SIGNATURE_ARTIFACT_TYPES, ManifestAttributes
from dockyard.metadata.portal import PortalQueries, RepositoryRow
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.sbom.documents import CYCLONEDX_JSON, SPDX_JSON
from dockyard.sbom.packages import Package
from dockyard.scanning.findings import Finding, ordered
from dockyard.scanning.reports import REPORT_TYPE
from dockyard.scanning.scanner import latest_scan
from dockyard.scanning.severity import Severity
from dockyard.tiers.usage import Usage

if TYPE_CHECKING:
    from dockyard.services import Services

log = logging.getLogger("dockyard.portal")
PAGE = 50
# A config larger than this is not read to show its history (configs are a few KiB).
CONFIG_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class RegistrySummary:
    registry: RegistryRecord
    tier: str
    usages: list[Usage]


@dataclass(frozen=True)
class TagRow:
    name: str
    digest: str
    size: int | None
    updated_at: datetime
    write_enabled: bool
    delete_enabled: bool


@dataclass(frozen=True)
class Layer:
    digest: str
    media_type: str
    size: int


@dataclass(frozen=True)
class Platform:
    digest: str
    platform: str
    size: int


@dataclass(frozen=True)
class Referrer:
    digest: str
    kind: str  # signature, sbom, scan report, other
    artifact_type: str
    size: int


@dataclass
class ManifestView:
    attributes: ManifestAttributes
    platforms: list[Platform] = field(default_factory=list)
    config_digest: str | None = None
    config: dict[str, Any] | None = None  # None: not readable here (size, rights)
    history: list[dict[str, Any]] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    referrers: list[Referrer] = field(default_factory=list)
    signatures: list[tuple[str, bool]] = field(default_factory=list)  # (description, valid)
    signature_note: str | None = None
    scanned_at: datetime | None = None
    findings: list[Finding] = field(default_factory=list)
    finding_count: int = 0
    quarantine: str | None = None


def registry_summary(services: Services, registry: RegistryRecord) -> RegistrySummary:
    return RegistrySummary(
        registry, services.usages.tier(registry).name, services.usages.usage(registry)
    )


def repositories(
    services: Services, registry: RegistryRecord, prefix: str, by_time: bool, after: str | None
) -> Page[RepositoryRow]:
    found = PortalQueries(services.meta).repositories(registry.id, prefix, by_time, after, PAGE + 1)
    if len(found) > PAGE:
        return Page(found[:PAGE], found[PAGE - 1].name, PAGE)
    return Page(found, None, PAGE)


def tags(
    services: Services, registry: RegistryRecord, repo: str, by_time: bool, after: str | None
) -> Page[TagRow]:
    """A page of listable tags as `/acr/v1/<repo>/_tags` lists them, with sizes."""
    page = services.properties.tags(
        registry, repo, last=after, n=PAGE, orderby="timedesc" if by_time else None
    )
    sizes = PortalQueries(services.meta).manifest_sizes(
        registry.id, repo, [tag.digest for tag in page.items]
    )
    rows = [
        TagRow(
            tag.name,
            tag.digest,
            sizes.get(tag.digest),
            tag.updated_at,
            tag.locks.write_enabled,
            tag.locks.delete_enabled,
        )
        for tag in page.items
    ]
    return Page(rows, page.next_last, page.n)


def _referrer_kind(artifact_type: str) -> str:
    if artifact_type in SIGNATURE_ARTIFACT_TYPES:
        return "signature"
    if artifact_type in (SPDX_JSON, CYCLONEDX_JSON):
        return "SBOM"
    if artifact_type == REPORT_TYPE:
        return "scan report"
    return "other"


def manifest(
    services: Services,
    registry: RegistryRecord,
    repo: str,
    digest: str,
    readable: bool,
    minimum: Severity,
) -> ManifestView:
    """`readable`: whether the viewer may pull (read the config blob) as well as read
    the manifest's metadata; `minimum`: the least severity of the findings shown."""
    attributes = services.properties.manifest(registry, repo, digest)
    view = ManifestView(attributes)
    record = services.meta.manifest_by_digest(registry.id, repo, digest)
    body: dict[str, Any] = {}
    if record is not None:
        try:
            body = orjson.loads(record.body)
        except orjson.JSONDecodeError:
            body = {}
    if attributes.media_type in INDEX_TYPES:
        for entry in body.get("manifests", []):
            platform = entry.get("platform") or {}
            shown = "/".join(
                p
                for p in (platform.get("os"), platform.get("architecture"), platform.get("variant"))
                if p
            )
            view.platforms.append(
                Platform(entry.get("digest", ""), shown or "unknown", int(entry.get("size", 0)))
            )
    else:
        config = body.get("config") or {}
        view.config_digest = config.get("digest")
        view.layers = [
            Layer(layer.get("digest", ""), layer.get("mediaType", ""), int(layer.get("size", 0)))
            for layer in body.get("layers", [])
        ]
        if readable and view.config_digest and int(config.get("size", 0)) <= CONFIG_LIMIT:
            view.config = _config(services, registry, view.config_digest)
            if view.config is not None:
                view.history = [h for h in view.config.get("history", []) if isinstance(h, dict)]
    for ref in services.meta.referrers(registry.id, repo, digest, None):
        artifact_type = ref.artifact_type or ref.media_type
        view.referrers.append(
            Referrer(ref.digest, _referrer_kind(artifact_type), artifact_type, ref.size)
        )
    _signatures(services, registry, repo, digest, view)
    scan = latest_scan(services.meta, registry, repo, digest).scan
    if scan is not None:
        findings = ordered(Finding.from_json(f) for f in scan.findings)
        view.scanned_at = scan.scanned_at
        view.finding_count = len(findings)
        view.findings = [f for f in findings if f.severity >= minimum]
    states = services.quarantine.attributes(registry, repo, [digest])
    view.quarantine = states.get(digest, {}).get("quarantineState")
    return view


def image_layers(record: ManifestRecord) -> list[str]:
    """The layer digests of an image manifest, base first (none for an index or an
    artifact without layers)."""
    try:
        body = orjson.loads(record.body)
    except orjson.JSONDecodeError:
        return []
    return [layer["digest"] for layer in body.get("layers", []) if "digest" in layer]


@dataclass(frozen=True)
class PackageChange:
    ecosystem: str
    name: str
    before: str | None  # None: added
    after: str | None  # None: removed


def package_changes(before: list[Package], after: list[Package]) -> list[PackageChange]:
    """Packages added, removed or at another version, by ecosystem and name."""
    old = {(p.ecosystem, p.name): p.version for p in before}
    new = {(p.ecosystem, p.name): p.version for p in after}
    return [
        PackageChange(key[0], key[1], old.get(key), new.get(key))
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]


def _config(services: Services, registry: RegistryRecord, digest: str) -> dict[str, Any] | None:
    """The image's config JSON from the blob store (decrypted by an encrypting store)."""
    try:
        with services.stores.for_registry(registry.name).open(digest) as stream:
            found = orjson.loads(stream.read(CONFIG_LIMIT + 1))
    except (OSError, orjson.JSONDecodeError, RegistryError):
        return None
    return found if isinstance(found, dict) else None


def _signatures(
    services: Services, registry: RegistryRecord, repo: str, digest: str, view: ManifestView
) -> None:
    """Each signature and whether it verifies, as `dockyard trust verify` sees it."""
    try:
        inspection = services.trust.inspect(registry, repo, digest)
    except RegistryError as exc:
        view.signature_note = f"signatures could not be checked: {exc}"
        return
    view.signatures = [
        (check.describe(), check.integrity is None and check.authenticity is None)
        for check in inspection.checks
    ]
    view.signature_note = inspection.statement.name


def header_lines(text: str) -> dict[str, str]:
    """Custom headers as a form's text area gives them, one `Name: value` a line (blank
    lines skipped); the webhooks service checks the names and values themselves."""
    headers: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            # Not the line itself: it may hold a secret.
            raise RequestInvalid(f"custom header line {number} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers
