"""One registry's kernel services in process (`Registry`), pushing the way the API does,
through core, on the `meta`, `stores`, `clock` and `registry` fixtures of
tests/conftest.py: the image pushes of the garbage collection tests
(`tests/core/test_gc.py`), the image lifecycle's (`tests/lifecycle/`) and the usage
counts' (`tests/tiers/test_usage.py`)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from dockyard.core.blobs import Blobs
from dockyard.core.garbage import GarbageCollector, GarbageReport
from dockyard.core.manifest_formats import OCI_MANIFEST
from dockyard.core.manifests import Manifests
from dockyard.core.uploads import Uploads
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from fake_clock import FakeClock

GRACE = timedelta(hours=24)
EXPIRY = timedelta(hours=48)
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def body_of(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Registry:
    """One registry's collaborators, pushing the way the API does, through core."""

    def __init__(
        self, meta: Metadata, stores: BlobStores, clock: FakeClock, record: RegistryRecord
    ) -> None:
        self.meta, self.record, self.clock = meta, record, clock
        self.store = stores.for_registry(record.name)
        self.uploads = Uploads(meta, stores, clock)
        self.manifests = Manifests(meta, stores)
        self.blobs = Blobs(meta, stores)
        self.gc = GarbageCollector(meta, stores, self.uploads, clock)

    def blob(self, data: bytes, repo: str = "app") -> str:
        digest = digest_of(data)
        asyncio.run(self.uploads.upload_whole(self.record, repo, digest, body_of(data)))
        return digest

    def image(self, repo: str, tag: str, config: bytes, *layers: bytes) -> str:
        for data in (config, *layers):
            self.blob(data, repo)
        body = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
                "layers": [
                    {"mediaType": LAYER, "digest": digest_of(layer), "size": len(layer)}
                    for layer in layers
                ],
            }
        )
        return self.manifests.put(self.record, repo, tag, body, OCI_MANIFEST).digest

    def collect(self, grace: timedelta = GRACE, **options: Any) -> GarbageReport:
        return self.gc.collect(grace, EXPIRY, **options)

    def linked(self, repo: str, data: bytes) -> bool:
        return self.meta.linked_blob(self.record.id, repo, digest_of(data)) is not None

    def stored(self, data: bytes) -> bool:
        """Both the row and the bytes: the two go together, or neither is there."""
        digest = digest_of(data)
        row = self.meta.blob_size(self.record.id, digest) is not None
        stored = self.store.stat(digest) is not None
        assert row == stored, f"{digest}: row {row}, bytes {stored}"
        return row
