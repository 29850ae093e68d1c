"""Which registries' blob stores encrypt: the `BlobStores.decorate` hook that puts an
`EncryptedBlobStore` around the store of every registry with encryption on, and the
`SecretBox` hook that seals such a registry's secrets with its keys.

`BlobStores` asks on every use of a store not yet wrapped, so the answer comes from
memory: the encrypted registries are read again at most every `refresh_seconds`, and at
once after this process turned one on. Another node's store starts encrypting within
`refresh_seconds` of encryption being turned on; blobs written in plaintext meanwhile are
encrypted by the background job, which converts a registry's plaintext blobs only once
`SETTLED_SECONDS` have passed since: a process whose stores do not wrap yet would look
for the plaintext copy, find it gone, and fail the pull."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from dockyard.encryption.registry_keys import RegistryKeys
from dockyard.encryption.secrets import RegistrySecretSealer
from dockyard.metadata.encryption import encrypted_registries
from dockyard.metadata.store import Metadata
from dockyard.storage.base import BlobStore

REFRESH_SECONDS = 5.0
# Twice the refresh: the clocks of the node that turned encryption on and of the node
# that converts may differ by a few seconds.
SETTLED_SECONDS = 2 * REFRESH_SECONDS


class EncryptingStores:
    def __init__(
        self,
        meta: Metadata,
        keys: RegistryKeys,
        refresh_seconds: float = REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meta = meta
        self._keys = keys
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._known: dict[str, int] = {}
        self._read_at: float | None = None
        self._generation = -1

    def sealer_for(self, registry_id: int) -> RegistrySecretSealer | None:
        """The registry's secrets' sealer if its encryption is on (`SecretBox`'s hook)."""
        if registry_id not in self._encrypted().values():
            return None
        return RegistrySecretSealer(self._keys.keyring(registry_id))

    def opener_for(self, registry_id: int) -> RegistrySecretSealer:
        """What opens the registry's secrets its keys sealed (`SecretBox`'s hook): asked
        only for such a secret, so the registry's encryption is on, noticed here or not."""
        return RegistrySecretSealer(self._keys.keyring(registry_id))

    def __call__(self, registry: str, store: BlobStore) -> BlobStore | None:
        registry_id = self._encrypted().get(registry)
        if registry_id is None:
            return None
        from dockyard.storage.encrypted import EncryptedBlobStore

        return EncryptedBlobStore(store, self._keys.keyring(registry_id))

    def _encrypted(self) -> dict[str, int]:
        now = self._monotonic()
        with self._lock:
            fresh = (
                self._read_at is not None
                and now - self._read_at < self._refresh_seconds
                and self._generation == self._keys.generation
            )
            if fresh:
                return self._known
        generation = self._keys.generation
        known = encrypted_registries(self._meta)
        with self._lock:
            self._known, self._read_at, self._generation = known, now, generation
        return known
