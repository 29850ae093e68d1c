"""The global endpoint's decisions, without I/O: which regions a request may go to, best
first. What it knows comes from the regions themselves (`routing_api`: each region's
registries and their replicas) and from health checks (`/readyz`); what it prefers comes
from `[router]` (an order of regions, per client network if configured).

The rules: a request for a registry's regional host name goes to that region only (the
client pinned it), whatever its `regionEndpointEnabled`. Any other request goes to the
regions, in the client's order of preference, that answer their health check, hold the
registry (a region some region lists among the registry's replicas) and are not taken
out of routing: a replica is out if any region that answers says its
`regionEndpointEnabled` is false (each region keeps its own list of replications, and an
operator may have changed it in any of them)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.replication.regions import region_key
from dockyard.settings import RouterSettings


def bare_host(host: str) -> str:
    """A Host header without its port, lower-cased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


@dataclass
class RegistryRoutes:
    """One registry as the answering regions describe it."""

    members: set[str] = field(default_factory=set)
    disabled: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Table:
    """The registries by login server, the regional hosts with their region, and the
    routes of the registry that answers any other host (as a region answers it with its
    default registry)."""

    registries: Mapping[str, RegistryRoutes]
    pinned: Mapping[str, str]
    default: RegistryRoutes | None = None

    @classmethod
    def of(cls, views: Iterable[Mapping[str, Any]]) -> Table:
        """Merge the routing views of the regions that answered."""
        registries: dict[str, RegistryRoutes] = {}
        pinned: dict[str, str] = {}
        default = None
        for view in views:
            for registry in view.get("registries", ()):
                routes = registries.setdefault(registry["loginServer"].lower(), RegistryRoutes())
                if registry.get("default"):
                    default = default or RegistryRoutes()
                    shared = default
                else:
                    shared = routes
                for replica in registry.get("replicas", ()):
                    region = region_key(replica["region"])
                    for into in (routes,) if shared is routes else (routes, shared):
                        into.members.add(region)
                        if not replica.get("regionEndpointEnabled", True):
                            into.disabled.add(region)
                    if replica.get("host"):
                        pinned[replica["host"].lower()] = region
        return cls(registries, pinned, default)

    def routes(self, host: str) -> RegistryRoutes | None:
        """The registry `host` names (with its port, then without), else the default."""
        found = self.registries.get(host.strip().lower()) or self.registries.get(bare_host(host))
        return found or self.default


EMPTY = Table({}, {})


class Preferences:
    """The order of regions for a client: the first `[[router.networks]]` entry that
    holds its address, else `[router] prefer`, else the order of `[region] peers`; the
    regions an order leaves out follow it in that last order."""

    def __init__(self, settings: RouterSettings, regions: Sequence[str]) -> None:
        self._all = [region_key(r) for r in regions]
        self._default = self._complete(settings.prefer)
        self._networks = [(n.cidr, self._complete(n.prefer)) for n in settings.networks]

    def _complete(self, prefer: Sequence[str]) -> list[str]:
        first = [region_key(r) for r in prefer if region_key(r) in self._all]
        return [*dict.fromkeys(first), *(r for r in self._all if r not in first)]

    def order(self, client: str | None) -> list[str]:
        if client and self._networks:
            try:
                address = ipaddress.ip_address(client)
            except ValueError:
                address = None
            for network, order in self._networks:
                if address is not None and address in network:
                    return order
        return self._default


def candidates(table: Table, healthy: set[str], order: Sequence[str], host: str) -> list[str]:
    """The regions to try for a request to `host`, best first."""
    pinned = table.pinned.get(bare_host(host))
    if pinned is not None:
        return [pinned]
    routes = table.routes(host)
    return [
        region
        for region in order
        if region in healthy
        and (routes is None or (region in routes.members and region not in routes.disabled))
    ]
