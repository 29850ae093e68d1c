"""Regional webhooks: a webhook's `location` names the region whose copy of the image it
reports on, as ACR's webhooks are bound to a replica's region. A webhook located in this
region (or in none, or in a region this deployment has no peer in: ACR's default, the
registry's home, is where the webhook is kept) fires as soon as the change is here, that
is when this region's outbox holds it: a push made here, or one a peer's change was
applied with (after its blobs and child manifests). A webhook located in a peer region
fires once that region shows the change, which only the replication feature can tell
(`ImageRegions`, its `replication.presence.Presence`); the webhooks never import it."""

from __future__ import annotations

from typing import Protocol


class ImageRegions(Protocol):
    def elsewhere(self, location: str | None) -> bool:
        """Whether `location` names a peer region, not this one."""
        ...

    async def reached(
        self, location: str, registry_id: int, repository: str, digest: str, present: bool
    ) -> bool:
        """Whether region `location` shows the change: holds the manifest (`present`: a
        push) or no longer does (a delete). True too when the change is moot here (the
        manifest deleted here since its push, or pushed again since its delete), so a
        notice never waits for what will not come."""
        ...


class HereOnly:
    """Without peers every location is this region's."""

    def elsewhere(self, location: str | None) -> bool:
        return False

    async def reached(
        self, location: str, registry_id: int, repository: str, digest: str, present: bool
    ) -> bool:
        return True
