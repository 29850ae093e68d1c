"""A manifest's findings on ACR's data-plane API, a Dockyard extension:
`GET /acr/v1/_vulnerabilities/{repository}/_manifests/{tag or digest}`, which needs
`metadata_read` on the repository (as the manifest's attributes do). Mounted through
`Feature.routes`, before the kernel's `/acr/v1/{name:path}` routes."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.acr import acr_time, json_response
from dockyard.api.authorization import authorize, repository_scope, request_registry
from dockyard.scanning.findings import Finding, ordered
from dockyard.scanning.reports import counts
from dockyard.scanning.scanner import ScanView, latest_scan


def scan_shape(registry: str, repo: str, view: ScanView) -> dict[str, Any]:
    """The JSON the route answers and `dockyard scan show --json` prints."""
    shown: dict[str, Any] = {"registry": registry, "imageName": repo, "digest": view.digest}
    scan = view.scan
    if scan is None:
        return shown | {"status": "not scanned"}
    findings = ordered(Finding.from_json(f) for f in scan.findings)
    return shown | {
        "status": "scanned",
        "scannedAt": acr_time(scan.scanned_at),
        "worst": scan.worst,
        "counts": counts(findings),
        "reportDigest": scan.report_digest,
        "findings": [f.to_json() for f in findings],
    }


async def manifest_findings(request: Request) -> Response:
    services, registry = request.app.state.services, request_registry(request)
    name, reference = request.path_params["name"], request.path_params["reference"]
    await authorize(request, repository_scope(name, "metadata_read"))
    view = latest_scan(services.meta, registry, name, reference)
    return json_response(scan_shape(registry.login_server, name, view))


ROUTES = [
    Route(
        "/acr/v1/_vulnerabilities/{name:path}/_manifests/{reference}",
        manifest_findings,
        methods=["GET"],
    ),
]
