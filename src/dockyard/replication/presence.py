"""Whether a peer region shows a change, for webhooks located there
(`webhooks.regional.ImageRegions`): the region is asked over the peer API whether it
holds the manifest, which it does only once its applier stored it after its blobs and
child manifests, that is once the image can be pulled there. An unreachable region
holds nothing yet as far as this one can tell: the notice waits."""

from __future__ import annotations

import asyncio
import logging

import httpx

from dockyard.core.registries import Registries
from dockyard.metadata.store import Metadata
from dockyard.replication.peers import PeerClient
from dockyard.replication.regions import Regions

log = logging.getLogger(__name__)


class Presence:
    def __init__(self, meta: Metadata, registries: Registries, regions: Regions) -> None:
        self._meta = meta
        self._registries = registries
        self._regions = regions

    def elsewhere(self, location: str | None) -> bool:
        return (
            location is not None
            and not self._regions.is_home(location)
            and self._regions.peer(location) is not None
        )

    async def reached(
        self, location: str, registry_id: int, repository: str, digest: str, present: bool
    ) -> bool:
        here = await asyncio.to_thread(
            self._meta.manifest_by_digest, registry_id, repository, digest
        )
        if (here is not None) != present:
            return True  # deleted here since its push, or pushed again since its delete
        peer = self._regions.peer(location)
        registry = next((r for r in self._registries.all() if r.id == registry_id), None)
        if peer is None or registry is None:
            return True
        try:
            async with PeerClient(self._regions, peer).client() as http:
                answer = await http.get(
                    f"/registries/{registry.name}/manifests/{digest}",
                    params={"repository": repository},
                )
        except httpx.HTTPError as exc:
            log.info(
                "region not reached for a regional webhook",
                extra={"fields": {"region": peer.name, "error": type(exc).__name__}},
            )
            return False
        if answer.status_code not in (200, 404):
            return False
        return (answer.status_code == 200) == present
