"""The webhooks' gauge on `/metrics` (`Feature.collectors`): the events each webhook's
deliveries are failing on, read from the outbox's backlog at each scrape, so every node
agrees. A webhook's deliveries are the outbox consumer `delivery.consumer_name(id)`."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dockyard.metadata.monitoring import MonitoringStore
from dockyard.webhooks.delivery import consumer_name


class WebhookGauges(Collector):
    def __init__(self, monitoring: MonitoringStore) -> None:
        self._store = monitoring

    def collect(self) -> Iterator[GaugeMetricFamily]:
        webhooks = GaugeMetricFamily(
            "dockyard_webhook_failing_events",
            "Events a webhook's deliveries are failing on (retried with backoff)",
            labels=["registry", "webhook"],
        )
        rows = self._store.backlog()
        names = self._store.webhook_names() if rows else {}
        by_consumer = {consumer_name(id_): named for id_, named in names.items()}
        for row in rows:
            if row.consumer in by_consumer:
                webhooks.add_metric(list(by_consumer[row.consumer]), row.failing)
        yield webhooks
