"""A registry's replications (`registries/{name}/replications/{name}`), Premium only:
one per region, each in a peer region `[region] peers` names. The home region (this
deployment's) is listed first as a replication too, as ACR lists it; it is no row and
cannot be changed or deleted. A replication's `status` is what the last contact with
its region found: Syncing until the region has answered, Ready once it has (and nothing
waits for it), Failed with the reason when it could not be reached."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from dockyard.common.clock import Clock
from dockyard.common.errors import RegionUnavailable, ReplicationInvalid, ReplicationUnknown
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.replication import ReplicationRecord, ReplicationWrites, replications
from dockyard.metadata.store import Metadata
from dockyard.replication.backlog import NO_LAG, Lag, lags
from dockyard.replication.peers import PeerClient, PeerUnreachable
from dockyard.replication.regions import Regions, region_key
from dockyard.tiers.tiers import Feature
from dockyard.tiers.usage import require_feature

SYNCING, READY, FAILED = "Syncing", "Ready", "Failed"
ZONE_REDUNDANCY = ("Enabled", "Disabled")
_NAME = re.compile(r"[A-Za-z0-9]{5,50}")


@dataclass(frozen=True)
class Replication:
    name: str
    location: str
    tags: dict[str, str]
    region_endpoint_enabled: bool
    zone_redundancy: str
    status: str
    message: str
    status_at: datetime | None
    home: bool
    lag: Lag = NO_LAG
    last_error: str | None = None
    last_error_at: datetime | None = None


def _of(record: ReplicationRecord, lag: Lag) -> Replication:
    return Replication(
        record.name,
        record.region,
        record.tags,
        record.region_endpoint_enabled,
        record.zone_redundancy,
        record.status,
        record.message,
        record.status_at,
        home=False,
        lag=lag,
        last_error=record.last_error,
        last_error_at=record.last_error_at,
    )


class Replications:
    def __init__(self, meta: Metadata, regions: Regions, clock: Clock) -> None:
        self._meta = meta
        self.regions = regions
        self._clock = clock

    def home(self, registry: RegistryRecord) -> Replication:
        name = region_key(self.regions.home)
        return Replication(
            name, self.regions.home, {}, True, "Disabled", READY, "the home region", None, True
        )

    def list(self, registry: RegistryRecord, with_lag: bool = True) -> list[Replication]:
        """The home region's, then the others by name, each with the registry's backlog
        for its region (`with_lag`: its count is one query over the outbox per region,
        left out where unneeded)."""
        found = replications(self._meta, registry.id)
        now = self._clock()

        def lag(region: str) -> Lag:
            return lags(self._meta, now, region).get(registry.id, NO_LAG) if with_lag else NO_LAG

        return [self.home(registry), *(_of(r, lag(r.region)) for r in found)]

    def get(self, registry: RegistryRecord, name: str, with_lag: bool = True) -> Replication:
        wanted = name.lower()
        found = next((r for r in self.list(registry, with_lag) if r.name.lower() == wanted), None)
        if found is None:
            raise ReplicationUnknown(f"The replication '{name}' was not found in the registry.")
        return found

    def exists(self, registry: RegistryRecord, name: str) -> bool:
        return any(r.name.lower() == name.lower() for r in self.list(registry, with_lag=False))

    def create(
        self,
        registry: RegistryRecord,
        name: str,
        location: str,
        tags: dict[str, str] | None = None,
        region_endpoint_enabled: bool = True,
        zone_redundancy: str = "Disabled",
    ) -> Replication:
        """A new replication in `location`, Syncing until its region answers (`probe`)."""
        if not _NAME.fullmatch(name):
            raise ReplicationInvalid(
                f"the replication name {name!r} must be 5 to 50 letters and digits"
            )
        if zone_redundancy not in ZONE_REDUNDANCY:
            raise ReplicationInvalid("zoneRedundancy is Enabled or Disabled")
        if self.regions.is_home(location):
            raise ReplicationInvalid(
                f"the registry's home region {self.regions.home} holds its home replication already"
            )
        peer = self.regions.peer(location)
        if peer is None:
            known = ", ".join(p.name for p in self.regions.peers) or "none"
            raise RegionUnavailable(
                f"the location {location!r} is not a region of this deployment (its peers: "
                f"{known}; [region] peers lists them)"
            )
        with self._meta.transaction() as tx:
            require_feature(tx, registry, Feature.GEO_REPLICATION)
            writes = ReplicationWrites(tx)
            for existing in writes.of_registry(registry.id):
                if existing.name.lower() == name.lower():
                    raise ReplicationInvalid(f"the replication {name} exists")
                if region_key(existing.region) == region_key(peer.name):
                    raise ReplicationInvalid(
                        f"the registry has a replication in {peer.name} already: {existing.name}"
                    )
            writes.add(
                registry.id,
                name,
                peer.name,
                tags or {},
                region_endpoint_enabled,
                zone_redundancy,
                SYNCING,
                f"waiting for region {peer.name} to answer",
            )
        return self.get(registry, name)

    def update(
        self,
        registry: RegistryRecord,
        name: str,
        tags: dict[str, str] | None,
        region_endpoint_enabled: bool | None,
    ) -> Replication:
        """ACR's PATCH: tags and `regionEndpointEnabled` only."""
        found = self.get(registry, name, with_lag=False)
        if found.home:
            raise ReplicationInvalid("the home region's replication changes with the registry")
        with self._meta.transaction() as tx:
            ReplicationWrites(tx).change(registry.id, found.name, tags, region_endpoint_enabled)
        return self.get(registry, name)

    def delete(self, registry: RegistryRecord, name: str) -> bool:
        """Remove the replication; False if there was none."""
        if not self.exists(registry, name):
            return False
        found = self.get(registry, name, with_lag=False)
        if found.home:
            raise ReplicationInvalid("the home region's replication cannot be deleted")
        with self._meta.transaction() as tx:
            return ReplicationWrites(tx).remove(registry.id, found.name)

    async def probe(self, registry: RegistryRecord, name: str) -> Replication:
        """Contact the replication's region and record what that found."""
        found = self.get(registry, name, with_lag=False)
        peer = self.regions.peer(found.location)
        status, message = READY, f"region {found.location} answered"
        try:
            if peer is None:
                raise PeerUnreachable(f"region {found.location} is no longer in [region] peers")
            await PeerClient(self.regions, peer).ping()
        except PeerUnreachable as exc:
            status, message = FAILED, str(exc)
        with self._meta.transaction() as tx:
            ReplicationWrites(tx).set_status(
                registry.id, found.name, status, message, failed=status == FAILED
            )
        return self.get(registry, name)
