"""One blob store per registry, made on first use: a registry's bytes never mix with
another's (quotas and customer-managed keys are per registry)."""

from __future__ import annotations

from pathlib import Path

from dockyard.storage.base import BlobStore
from dockyard.storage.filesystem import FilesystemBlobStore


class BlobStores:
    def __init__(self, root: Path) -> None:
        self._root = root
        self._stores: dict[str, BlobStore] = {}

    def for_registry(self, registry: str) -> BlobStore:
        store = self._stores.get(registry)
        if store is None:
            store = self._stores[registry] = FilesystemBlobStore(self._root / registry)
        return store

    def all(self) -> list[BlobStore]:
        """Every registry store that has data, for housekeeping across registries."""
        if self._root.is_dir():
            for entry in self._root.iterdir():
                if entry.is_dir():
                    self.for_registry(entry.name)
        return list(self._stores.values())
