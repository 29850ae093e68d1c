"""Geo-replication's gauges on `/metrics` (`Feature.collectors`), per replication
(registry, region): the changes not yet delivered, how long the oldest has waited, and
whether the region took the last change sent; read from the database at each scrape,
so every node of a region agrees."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dockyard.common.clock import Clock
from dockyard.core.registries import Registries
from dockyard.metadata.replication import all_replications
from dockyard.metadata.store import Metadata
from dockyard.replication.backlog import NO_LAG, lags
from dockyard.replication.replications import READY


class ReplicationGauges(Collector):
    def __init__(self, meta: Metadata, registries: Registries, clock: Clock) -> None:
        self._meta = meta
        self._registries = registries
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        labels = ["registry", "region"]
        depth = GaugeMetricFamily(
            "dockyard_replication_queue_depth",
            "Changes of the registry not yet delivered to the replica's region",
            labels=labels,
        )
        lag = GaugeMetricFamily(
            "dockyard_replication_lag_seconds",
            "How long the oldest change not yet delivered to the replica's region has waited",
            labels=labels,
        )
        ready = GaugeMetricFamily(
            "dockyard_replication_ready",
            "1 if the replica's region took the last change sent to it, else 0",
            labels=labels,
        )
        found = all_replications(self._meta)
        if found:
            names = {registry.id: registry.name for registry in self._registries.all()}
            now = self._clock()
            waiting = {r.region: lags(self._meta, now, r.region) for r in found}
            for replica in found:
                name = names.get(replica.registry_id)
                if name is None:
                    continue
                behind = waiting[replica.region].get(replica.registry_id, NO_LAG)
                depth.add_metric([name, replica.region], behind.queue_depth)
                lag.add_metric([name, replica.region], behind.seconds)
                ready.add_metric([name, replica.region], 1.0 if replica.status == READY else 0.0)
        yield from (depth, lag, ready)
