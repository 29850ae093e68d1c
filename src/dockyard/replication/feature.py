"""Geo-replication as a `Feature`: its services, `Replications` (a registry's replications
in the peer regions `[region]` names) and `Applier` (what a peer's changes do here), the
endpoints peers call, and the outbox consumer that sends this region's changes to its
peers (`sender`; only when `[region] peers` names any). The management API
shows and changes replications as ARM's `registries/replications`
(`management/api/replications.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from datetime import datetime

    import typer
    from prometheus_client.registry import Collector
    from starlette.middleware import Middleware
    from starlette.routing import BaseRoute

    from dockyard.common.errors import RegistryError
    from dockyard.services import Services
    from dockyard.settings import Settings


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.common.clock import HybridClock
    from dockyard.replication.applier import Applier
    from dockyard.replication.presence import Presence
    from dockyard.replication.regions import Regions
    from dockyard.replication.replications import Replications
    from dockyard.replication.sender import Sender

    regions = Regions.from_settings(services.settings)
    if regions.secret is not None and regions.peers:
        from dockyard.replication.shared_keys import shared_signing_key

        services.keys.share(shared_signing_key(regions.secret))
    clock = services.clock
    applier = Applier(
        services.meta,
        services.manifests,
        services.blobs,
        services.uploads,
        regions.home,
        clock.observe if isinstance(clock, HybridClock) else _blind,
    )
    return {
        "replications": Replications(services.meta, regions, services.clock),
        "replication_applier": applier,
        "replication_sender": Sender(services.meta, services.stores, services.registries, regions),
        "image_regions": Presence(services.meta, services.registries, regions),
    }


def _blind(moment: datetime) -> None:
    """The `observe` of a clock that cannot catch up (a test's fixed clock)."""


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    """The peer regions' queues: each a consumer drained by a loop of its own, so a
    region that is down (each try waiting out the time-out) never slows the others."""
    from dockyard.events import Consumer
    from dockyard.replication.backlog import TAKES, consumer_name
    from dockyard.replication.queues import queues

    sender, peers = services.replication_sender, services.replications.regions.peers
    if not peers:
        return []
    consumers = [
        Consumer(
            consumer_name(peer.name),
            sender.handler(peer.name),
            TAKES,
            handle_batch=sender.batch_handler(peer.name),
            ordered=True,
            runs=True,
        )
        for peer in peers
    ]
    return [queues(services.outbox, consumers)]


def _middleware(services: Services) -> Sequence[Middleware]:
    """The global endpoint's blob redirects (`routed_blobs`), with a peer credential."""
    if services.replications.regions.secret is None:
        return ()
    from starlette.middleware import Middleware

    from dockyard.replication.routed_blobs import RoutedBlobs

    return [Middleware(RoutedBlobs, services=services)]


def _collectors(services: Services) -> Sequence[Collector]:
    from dockyard.replication.metrics import ReplicationGauges

    return [ReplicationGauges(services.meta, services.registries, services.clock)]


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.replication import api, routing_api

    return [*api.routes, *routing_api.routes]


def _public_paths(settings: Settings) -> frozenset[str]:
    """The peer endpoints: a region's calls to another are the registry's own traffic,
    authenticated by the peer credential, not a client's that network rules filter."""
    from dockyard.replication.peers import PREFIX

    return frozenset({PREFIX + "/"})


def _statuses() -> Mapping[type[RegistryError], int]:
    from dockyard.common.errors import ReplicationUnknown

    return {ReplicationUnknown: 404}


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import replication, router

    replication.register(app)
    router.register(app)


REPLICATION = Feature(
    "replication",
    services=_services,
    routes=_routes,
    statuses=_statuses,
    public_paths=_public_paths,
    jobs=_jobs,
    middleware=_middleware,
    collectors=_collectors,
    cli=_cli,
)
