"""Scanning's gauges on `/metrics` (`Feature.collectors`), read from the database at
each scrape so that every node agrees: the vulnerability database's size and age, the
scanned images of each registry by their worst severity, and the rescans still due
after an import (how far the background work is behind the database)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dockyard.core.registries import Registries
from dockyard.metadata.scanning import database_state, scan_counts
from dockyard.metadata.store import Metadata


class ScanGauges(Collector):
    def __init__(self, meta: Metadata, registries: Registries) -> None:
        self._meta = meta
        self._registries = registries

    def collect(self) -> Iterator[GaugeMetricFamily]:
        advisories, packages, changed = database_state(self._meta)
        size = GaugeMetricFamily(
            "dockyard_vulndb_advisories", "Advisories in the vulnerability database"
        )
        size.add_metric([], advisories)
        affected = GaugeMetricFamily(
            "dockyard_vulndb_affected_packages",
            "Affected packages the vulnerability database's advisories name",
        )
        affected.add_metric([], packages)
        updated = GaugeMetricFamily(
            "dockyard_vulndb_updated_timestamp_seconds",
            "When the vulnerability database last changed (Unix time; absent: never imported)",
        )
        if changed is not None:
            updated.add_metric([], changed.timestamp())
        scanned = GaugeMetricFamily(
            "dockyard_scanned_images",
            "Manifests with a stored scan, by registry and worst severity found",
            labels=["registry", "worst"],
        )
        due = GaugeMetricFamily(
            "dockyard_scan_rescans_due",
            "Scanned manifests whose scan is older than the vulnerability database",
            labels=["registry"],
        )
        names = {registry.id: registry.name for registry in self._registries.all()}
        for (registry_id, worst), count in sorted(scan_counts(self._meta, None).items()):
            if registry_id in names:
                scanned.add_metric([names[registry_id], worst], count)
        if changed is not None:
            behind: dict[str, int] = {}
            for (registry_id, _), count in scan_counts(self._meta, changed).items():
                if registry_id in names:
                    behind[names[registry_id]] = behind.get(names[registry_id], 0) + count
            for name, count in sorted(behind.items()):
                due.add_metric([name], count)
        yield from (size, affected, updated, scanned, due)
