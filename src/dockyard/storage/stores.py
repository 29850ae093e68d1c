"""One blob store per registry, made on first use: a registry's bytes never mix with
another's (quotas and customer-managed keys are per registry). On the filesystem each
registry has a directory; in an S3 bucket, a key prefix (`<registry>/`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.storage.base import BlobStore
from dockyard.storage.filesystem import FilesystemBlobStore

if TYPE_CHECKING:
    from dockyard.settings import Settings


class BlobStores:
    def __init__(
        self,
        root: Path | None = None,
        *,
        make: Callable[[str], BlobStore] | None = None,
        names: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        """`BlobStores(root)`: a directory per registry under `root`. Other backends give
        `make` (the store of a registry) and `names` (registries that have data)."""
        if make is None:
            if root is None:
                raise ValueError("BlobStores needs a root directory or a store factory")
            make, names = _filesystem(root)
        self._make = make
        self._names = names or (lambda: ())
        self._stores: dict[str, BlobStore] = {}
        self._wrap: Callable[[str, BlobStore], BlobStore | None] | None = None
        self._wrapped: dict[str, BlobStore] = {}

    def decorate(self, wrap: Callable[[str, BlobStore], BlobStore | None]) -> None:
        """Let a feature put a store of its own around a registry's (encryption at rest):
        `wrap(registry, store)` returns the store to use instead, or None to keep it. It
        is asked on every `for_registry` until it wraps (a registry may need it from any
        moment on, and never stops needing it), so it must answer from memory."""
        self._wrap = wrap

    @classmethod
    def from_settings(cls, settings: Settings) -> BlobStores:
        storage = settings.storage
        if storage.kind == "filesystem":
            return cls(settings.blob_root)
        from dockyard.storage.s3 import S3BlobStore, make_client, prefixes
        from dockyard.storage.s3_signed import SignedReads

        assert storage.bucket is not None  # the settings refuse s3 without a bucket
        bucket = storage.bucket
        client = make_client(
            storage.endpoint,
            storage.region,
            storage.access_key,
            storage.secret_key.get_secret_value() if storage.secret_key else None,
            storage.path_style,
            connect_timeout=storage.connect_timeout_seconds,
            read_timeout=storage.read_timeout_seconds,
            max_attempts=storage.max_attempts,
        )
        reads = SignedReads(client)
        return cls(
            make=lambda registry: S3BlobStore(client, bucket, registry, reads),
            names=lambda: prefixes(client, bucket),
        )

    def for_registry(self, registry: str) -> BlobStore:
        wrapped = self._wrapped.get(registry)
        if wrapped is not None:
            return wrapped
        store = self._stores.get(registry)
        if store is None:
            store = self._stores[registry] = self._make(registry)
        if self._wrap is not None and (wrapped := self._wrap(registry, store)) is not None:
            self._wrapped[registry] = wrapped
            return wrapped
        return store

    def all(self) -> list[BlobStore]:
        """Every registry store that has data, for housekeeping across registries."""
        return [self.for_registry(name) for name in dict.fromkeys([*self._names(), *self._stores])]


def _filesystem(root: Path) -> tuple[Callable[[str], BlobStore], Callable[[], Iterable[str]]]:
    def names() -> Iterable[str]:
        if root.is_dir():
            return [entry.name for entry in root.iterdir() if entry.is_dir()]
        return []

    return (lambda registry: FilesystemBlobStore(root / registry)), names
