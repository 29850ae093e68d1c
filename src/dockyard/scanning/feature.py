"""Vulnerability scanning as a `Feature`: its services (the vulnerability database, the
scanner, the registries' scanning policies), the pull policy that refuses vulnerable
images, scan on push (an outbox consumer), rescans after an import (a job), the
findings route under `/acr/v1/_vulnerabilities/`, gauges on `/metrics` and the verbs
`vulndb` and `scan`.

The scanner reads an image's packages through the SBOM feature's inventory,
`dockyard.sbom.inventory.image_packages`, imported when a scan first needs it."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer
    from prometheus_client.registry import Collector
    from starlette.routing import BaseRoute

    from dockyard.core.policies import PullPolicy
    from dockyard.events import Consumer
    from dockyard.metadata.records import RegistryRecord
    from dockyard.sbom.packages import Package
    from dockyard.scanning.scanner import PackagesOf
    from dockyard.services import Services
    from dockyard.settings import Settings


def inventory_of(services: Services) -> PackagesOf:
    """`packages_of` for the scanner: the SBOM feature's reading of an image's layers."""

    def packages_of(registry: RegistryRecord, repo: str, digest: str) -> list[Package]:
        from dockyard.sbom.inventory import image_packages

        return image_packages(services, registry, repo, digest)

    return packages_of


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.scanning.database import VulnDatabase
    from dockyard.scanning.policy import ScanPolicies
    from dockyard.scanning.quarantine_writer import ScannerAsQuarantineWriter
    from dockyard.scanning.scanner import Scanner

    database = VulnDatabase(services.meta)
    policies = ScanPolicies(services.meta)
    scanner = Scanner(
        services.meta,
        database,
        inventory_of(services),
        services.uploads,
        services.manifests,
        ScannerAsQuarantineWriter(services.quarantine, policies),
    )
    return {"vuln_db": database, "scanner": scanner, "scan_policies": policies}


def _pull_policies(services: Services) -> Sequence[PullPolicy]:
    from dockyard.scanning.policy import VulnerabilityPullPolicy

    return [VulnerabilityPullPolicy(services.meta, services.scan_policies)]


def _consumers(services: Services) -> Sequence[Consumer]:
    from dockyard.core.events import ManifestPushed
    from dockyard.events import Consumer
    from dockyard.scanning.background import CONSUMER, scan_pushed

    return [Consumer(CONSUMER, lambda stored: scan_pushed(services, stored), (ManifestPushed,))]


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.scanning.background import rescan_after_imports
    from dockyard.scanning.matching import stop_with_the_background

    return [rescan_after_imports(services), stop_with_the_background()]


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.scanning.api import ROUTES

    return ROUTES


def _collectors(services: Services) -> Sequence[Collector]:
    from dockyard.scanning.metrics import ScanGauges

    return [ScanGauges(services.meta, services.registries)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import scanning

    scanning.register(app)


SCANNING = Feature(
    "scanning",
    services=_services,
    routes=_routes,
    pull_policies=_pull_policies,
    consumers=_consumers,
    jobs=_jobs,
    collectors=_collectors,
    cli=_cli,
)
