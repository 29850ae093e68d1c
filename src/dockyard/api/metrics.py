"""`/metrics` in Prometheus' text format (prometheus-client).

Per request (`RequestLog` calls `observe`): requests by operation (the route's handler,
never the raw path, so repository names cannot explode the label set), method and
status; bytes received and sent; latency. Granian runs several worker processes, so
under `dockyard serve` these live in prometheus-client's multiprocess files
(`PROMETHEUS_MULTIPROC_DIR`, `DATA_DIR/metrics`, emptied by `prepare_directory` before
the workers start) and a scrape, answered by any worker, adds up every process's.
Writing those files costs microseconds per value, several times a request: `observe`
only adds to sums in this process, and `publish` moves them into prometheus-client
every `[audit] flush_seconds`, before this process answers a scrape, and at shutdown.
A scrape may so miss another worker's last second.
At each scrape, from the database, so every node agrees: storage used per registry,
the outbox's backlog per consumer, then what each feature's collectors read
(`Feature.collectors`: the events each webhook is failing on).

`[metrics] token` makes a scrape need `Authorization: Bearer <token>`. The endpoint is
the server's, not a registry's, so no registry's network rules apply to it."""

from __future__ import annotations

import asyncio
import hmac
import os
import shutil
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.services import Services

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus-client's own variable
_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


def prepare_directory(path: Path) -> None:
    """Before the server's workers start: an empty directory for their metric files
    (counts of an earlier run would otherwise be added in), named to prometheus-client.
    This process imported it before the variable was set: choose its multiprocess
    values now, which forked workers inherit (spawned ones read the variable)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR] = str(path)
    values.ValueClass = values.get_value_class()


class _Pending:
    """What requests of one label set added since the last `publish`."""

    __slots__ = ("buckets", "bytes_in", "bytes_out", "requests", "seconds")

    def __init__(self) -> None:
        self.requests = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(_LATENCY_BUCKETS) + 1)  # the last one is +Inf


class Metrics:
    """One per app (per process). Label children are kept per label set, so a publish
    needs no label look-ups."""

    def __init__(self, services: Services, collectors: Sequence[Collector]) -> None:
        """`collectors`: the features' (`Feature.collectors`), read after the kernel's."""
        self._token = services.settings.metrics.token
        # This process's counters; the features' request recorders add theirs here.
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "dockyard_http_requests",
            "HTTP requests answered, by operation (route handler), method and status",
            ["operation", "method", "status"],
            registry=self.registry,
        )
        self._bytes_in = Counter(
            "dockyard_http_request_bytes",
            "Bytes of request bodies received, by operation",
            ["operation"],
            registry=self.registry,
        )
        self._bytes_out = Counter(
            "dockyard_http_response_bytes",
            "Bytes of response bodies sent, by operation",
            ["operation"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "dockyard_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response, by operation",
            ["operation"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._database = CollectorRegistry()
        self._database.register(_DatabaseGauges(services))
        for collector in collectors:
            self._database.register(collector)
        self._children: dict[tuple[object, str, int], tuple] = {}
        self._pending: dict[tuple[object, str, int], _Pending] = {}

    def observe(
        self,
        endpoint: object,
        method: str,
        status: int,
        bytes_in: int,
        bytes_out: int,
        seconds: float,
    ) -> None:
        key = (endpoint, method, status)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending()
        pending.requests += 1
        pending.bytes_in += bytes_in
        pending.bytes_out += bytes_out
        pending.seconds += seconds
        pending.buckets[bisect_left(_LATENCY_BUCKETS, seconds)] += 1

    def publish(self) -> None:
        """Add what was observed since the last call to prometheus-client's values. Runs
        on the event loop, as `observe` does, so no request's figures fall in between."""
        pending, self._pending = self._pending, {}
        for key, added in pending.items():
            requests, received, sent, latency = self._children_of(key)
            requests.inc(added.requests)
            if added.bytes_in:
                received.inc(added.bytes_in)
            if added.bytes_out:
                sent.inc(added.bytes_out)
            # A histogram child takes one observation at a time; its sum and buckets
            # (counted per bucket, not cumulatively) take totals.
            latency._sum.inc(added.seconds)
            for bucket, count in zip(latency._buckets, added.buckets, strict=True):
                if count:
                    bucket.inc(count)

    def _children_of(self, key: tuple[object, str, int]) -> tuple:
        children = self._children.get(key)
        if children is None:
            endpoint, method, status = key
            operation = _operation(endpoint)
            label = method if method in _METHODS else "other"
            children = self._children[key] = (
                self._requests.labels(operation, label, str(status)),
                self._bytes_in.labels(operation),
                self._bytes_out.labels(operation),
                self._latency.labels(operation),
            )
        return children

    def render(self) -> bytes:
        """Every process's counters (multiprocess) or this one's, then the gauges read
        from the database. `publish` first, on the event loop."""
        directory = os.environ.get(MULTIPROCESS_DIR)
        if directory:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)
        else:
            registry = self.registry
        return generate_latest(registry) + generate_latest(self._database)

    def allows(self, request: Request) -> bool:
        if self._token is None:
            return True
        expected = f"Bearer {self._token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode("latin-1")
        return hmac.compare_digest(given, expected)


class _DatabaseGauges(Collector):
    def __init__(self, services: Services) -> None:
        self._store = services.monitoring

    def collect(self) -> Iterator[GaugeMetricFamily]:
        storage = GaugeMetricFamily(
            "dockyard_storage_used_bytes", "Bytes the registry's blobs take", labels=["registry"]
        )
        for registry, used in self._store.storage_used():
            storage.add_metric([registry], used)
        yield storage
        backlog = GaugeMetricFamily(
            "dockyard_outbox_backlog_events",
            "Outbox events a consumer has not yet handled",
            labels=["consumer"],
        )
        failing = GaugeMetricFamily(
            "dockyard_outbox_failing_events",
            "Outbox events a consumer is retrying after a failed attempt",
            labels=["consumer"],
        )
        for row in self._store.backlog():
            backlog.add_metric([row.consumer], row.undelivered)
            failing.add_metric([row.consumer], row.failing)
        yield backlog
        yield failing


def _operation(endpoint: object) -> str:
    """`distribution.manifest`: the handler's module and name; `unmatched` off routes."""
    name = getattr(endpoint, "__name__", None)
    if name is None:
        return "unmatched"
    module = getattr(endpoint, "__module__", "") or ""
    return f"{module.rsplit('.', 1)[-1]}.{name}"


async def metrics(request: Request) -> Response:
    exporter: Metrics = request.app.state.metrics
    if not exporter.allows(request):
        return Response(
            b"a bearer token is required\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            media_type="text/plain",
        )
    exporter.publish()
    body = await asyncio.to_thread(exporter.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
