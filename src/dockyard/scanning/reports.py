"""The report referrer: a scan's findings as an OCI artifact whose `subject` is the
scanned image, so that `GET /v2/<repo>/referrers/<digest>` (and `oras discover`) finds
it beside signatures and SBOMs. Its artifact type and its one layer's media type are
`REPORT_TYPE`; the layer is the report JSON (`report_json`); the config is OCI's empty
descriptor."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from dockyard.core.manifest_formats import OCI_MANIFEST
from dockyard.core.manifests import Manifests
from dockyard.core.uploads import Uploads
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.scanning.findings import Finding, worst
from dockyard.scanning.severity import Severity

REPORT_TYPE = "application/vnd.dockyard.vulnerability.report.v1+json"
_EMPTY = b"{}"
_EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    """How many findings of each severity, every severity named (zero included)."""
    found = {severity.word: 0 for severity in reversed(Severity)}
    for finding in findings:
        found[finding.severity.word] += 1
    return found


def report_json(
    repo: str, digest: str, scanned_at: datetime, findings: Sequence[Finding]
) -> dict[str, Any]:
    return {
        "schemaVersion": 1,
        "scanner": "dockyard",
        "artifact": {"repository": repo, "digest": digest},
        "scannedAt": scanned_at.isoformat().replace("+00:00", "Z"),
        "worst": worst(findings).word,
        "counts": counts(findings),
        "findings": [f.to_json() for f in findings],
    }


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def push_report(
    uploads: Uploads,
    manifests: Manifests,
    registry: RegistryRecord,
    repo: str,
    subject: ManifestRecord,
    report: dict[str, Any],
) -> str:
    """Push the report and its manifest (by digest, no tag) as any client would, through
    the registry's own uploads and manifests (quota and locks apply); its digest."""
    layer = orjson.dumps(report)
    layer_digest = _digest(layer)
    for data, digest in ((_EMPTY, _EMPTY_DIGEST), (layer, layer_digest)):
        await uploads.upload_whole(registry, repo, digest, _once(data), len(data))
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": REPORT_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": _EMPTY_DIGEST,
                "size": len(_EMPTY),
            },
            "layers": [{"mediaType": REPORT_TYPE, "digest": layer_digest, "size": len(layer)}],
            "subject": {
                "mediaType": subject.media_type,
                "digest": subject.digest,
                "size": subject.size,
            },
            "annotations": {
                "org.opencontainers.image.created": report["scannedAt"],
                "io.dockyard.scan.worst": report["worst"],
            },
        }
    )
    digest = _digest(manifest)
    manifests.put(registry, repo, digest, manifest, OCI_MANIFEST)
    return digest
