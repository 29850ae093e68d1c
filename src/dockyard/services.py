"""Builds the registry's collaborators from `Settings`: the one place they are wired."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.core.blobs import Blobs
from dockyard.core.clock import Clock, utc_now
from dockyard.core.listings import Listings
from dockyard.core.manifests import Manifests
from dockyard.core.referrers import Referrers
from dockyard.core.registries import Registries
from dockyard.core.uploads import Uploads
from dockyard.metadata.store import Metadata
from dockyard.settings import Settings
from dockyard.storage.stores import BlobStores


@dataclass
class Services:
    settings: Settings
    meta: Metadata
    stores: BlobStores
    registries: Registries
    blobs: Blobs
    uploads: Uploads
    manifests: Manifests
    listings: Listings
    referrers: Referrers

    def close(self) -> None:
        self.meta.close()


def build_services(settings: Settings, clock: Clock = utc_now) -> Services:
    meta = Metadata(settings.database_url, clock)
    stores = BlobStores(settings.blob_root)
    registries = Registries(meta, settings.registry.default_name)
    registries.reload()
    return Services(
        settings=settings,
        meta=meta,
        stores=stores,
        registries=registries,
        blobs=Blobs(meta, stores),
        uploads=Uploads(meta, stores, clock),
        manifests=Manifests(meta),
        listings=Listings(meta),
        referrers=Referrers(meta),
    )
