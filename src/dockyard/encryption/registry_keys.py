"""A registry's customer-managed key and data keys: turning encryption on (one-way, as on
ACR), rotating the key-encryption key (the data keys are rewrapped, no blob is
rewritten), following a non-versioned key to its newest version, and the data keys in
memory for the blob store.

Unwrapped data keys live only in this process's memory, and only for `check_seconds`:
the next use after that unwraps them again through the provider, so a key the customer
revokes (a deleted key file, a destroyed or disabled HSM object) stops the registry's
reads and writes within that time, with `KeyUnavailable`, and restoring the key restores
service with nothing lost (the wrapped keys never change on a failure)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.common.errors import KeyNotFound, KeyUnavailable, RequestInvalid
from dockyard.encryption.providers import KeyProvider
from dockyard.metadata.encryption import (
    EncryptionRow,
    EncryptionWrites,
    data_keys_of,
    encryption_of,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.tiers.tiers import Feature
from dockyard.tiers.usage import require_feature

DATA_KEY_BYTES = 32


@dataclass
class _Unwrapped:
    """A registry's data keys as this process last unwrapped them."""

    checked_at: float
    keys: dict[str, bytes] = field(default_factory=dict)
    current: str | None = None


class RegistryKeys:
    def __init__(
        self,
        meta: Metadata,
        provider: KeyProvider,
        check_seconds: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meta = meta
        self._provider = provider
        self._check_seconds = check_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._unwrapped: dict[int, _Unwrapped] = {}
        # Counts the registries this process turned encryption on for, so that its stores
        # start encrypting at once (`encryption.stores`).
        self.generation = 0

    # -- the management side ----------------------------------------------------------------

    def status(self, registry: RegistryRecord) -> EncryptionRow | None:
        return encryption_of(self._meta, registry.id)

    def enable(self, registry: RegistryRecord, key_identifier: str, identity: str | None) -> None:
        """Encrypt the registry's blobs from now on with a new data key wrapped by
        `key_identifier` (versioned: pinned; else its newest version, followed). On a
        registry already encrypted, a new key identifier is a rotation. A key that does
        not exist is the request's fault: RequestInvalid."""
        try:
            self._enable(registry, key_identifier, identity)
        except KeyNotFound as error:
            raise RequestInvalid(error.message) from None

    def _enable(self, registry: RegistryRecord, key_identifier: str, identity: str | None) -> None:
        if encryption_of(self._meta, registry.id) is not None:
            self.rotate(registry, key_identifier, identity)
            return
        versioned = self._versioned(key_identifier)
        data_key = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped = self._provider.wrap(versioned, data_key)
        with self._meta.transaction() as tx:
            require_feature(tx, registry, Feature.CUSTOMER_MANAGED_KEYS)
            writes = EncryptionWrites(tx)
            writes.enable(registry.id, key_identifier, versioned, identity)
            writes.add_data_key(registry.id, _new_key_id(), wrapped, versioned)
        self.forget(registry.id)
        self.generation += 1

    def rotate(
        self,
        registry: RegistryRecord,
        key_identifier: str | None = None,
        identity: str | None = None,
    ) -> bool:
        """Rewrap every data key with the newest version of `key_identifier` (default:
        the registry's own). Nothing is rewritten but the wrapped keys, in one
        transaction; the old key must still unwrap them. False if the registry's key is
        already that version."""
        found = encryption_of(self._meta, registry.id)
        if found is None:
            raise RequestInvalid(f"registry {registry.name} is not encrypted")
        key_identifier = key_identifier or found.key_identifier
        identity = identity if identity is not None else found.identity
        versioned = self._versioned(key_identifier)
        if versioned == found.versioned_key_identifier:
            if (key_identifier, identity) != (found.key_identifier, found.identity):
                self._record(registry, key_identifier, versioned, identity, [])
            return False
        rewrapped = [
            (row.key_id, self._provider.wrap(versioned, self._unwrap(row.wrapped_by, row.wrapped)))
            for row in data_keys_of(self._meta, registry.id)
        ]
        self._record(registry, key_identifier, versioned, identity, rewrapped)
        return True

    def _record(
        self,
        registry: RegistryRecord,
        key_identifier: str,
        versioned: str,
        identity: str | None,
        rewrapped: list[tuple[str, bytes]],
    ) -> None:
        with self._meta.transaction() as tx:
            writes = EncryptionWrites(tx)
            for key_id, wrapped in rewrapped:
                writes.rewrap(registry.id, key_id, wrapped, versioned)
            writes.change_key(registry.id, key_identifier, versioned, identity)
        self.forget(registry.id)

    def new_data_key(self, registry: RegistryRecord) -> str:
        """Make a new data key the registry's current one (its id): new blobs are
        encrypted with it at once on this process, on others within `check_seconds`,
        and the background round rewrites the blobs under the older keys, then retires
        them (`retire_unused`)."""
        found = encryption_of(self._meta, registry.id)
        if found is None:
            raise RequestInvalid(f"registry {registry.name} is not encrypted")
        key_id = _new_key_id()
        wrapped = self._provider.wrap(
            found.versioned_key_identifier, secrets.token_bytes(DATA_KEY_BYTES)
        )
        with self._meta.transaction() as tx:
            EncryptionWrites(tx).add_data_key(
                registry.id, key_id, wrapped, found.versioned_key_identifier
            )
        self.forget(registry.id)
        return key_id

    def older_data_keys(self, registry: RegistryRecord) -> set[str]:
        """The ids of the registry's data keys before the current one, not yet retired:
        blobs may still be encrypted with them."""
        rows = data_keys_of(self._meta, registry.id)
        return {row.key_id for row in rows[:-1] if row.retired_at is None}

    def retire(self, registry: RegistryRecord, key_ids: set[str]) -> bool:
        """Mark older data keys as no longer encrypting any blob, once the current key
        is older than `check_seconds` (every process writes with it by then: none can
        add a blob under an older one). They stay, wrapped, so that a copy a crash left
        behind still reads. False if it is too early."""
        rows = data_keys_of(self._meta, registry.id)
        if not rows or (self._meta.clock() - rows[-1].created_at).total_seconds() < (
            2 * self._check_seconds
        ):
            return False
        with self._meta.transaction() as tx:
            writes = EncryptionWrites(tx)
            for key_id in key_ids:
                writes.retire(registry.id, key_id)
        return True

    def current_data_key(self, registry: RegistryRecord) -> str | None:
        """The id of the key new blobs get, as the database has it (this process's
        keyring follows within `check_seconds`; `forget` makes it follow at once)."""
        rows = data_keys_of(self._meta, registry.id)
        return rows[-1].key_id if rows else None

    def follow_newest(self, registry: RegistryRecord) -> bool:
        """Rotate to the newest version of a non-versioned key identifier (ACR follows new
        Key Vault versions within an hour): True if it moved."""
        found = encryption_of(self._meta, registry.id)
        if found is None or self._provider.is_versioned(found.key_identifier):
            return False
        return self.rotate(registry)

    def forget(self, registry_id: int) -> None:
        """Drop this process's unwrapped keys of the registry: the next use reads them
        again."""
        with self._lock:
            self._unwrapped.pop(registry_id, None)

    # -- the blob store's side --------------------------------------------------------------

    def keyring(self, registry_id: int) -> RegistryKeyring:
        return RegistryKeyring(self, registry_id)

    def _keys(self, registry_id: int, wanted: str | None = None) -> _Unwrapped:
        """The registry's unwrapped data keys, unwrapped again once `check_seconds` have
        passed, or when `wanted` is a key this process has not seen (another node made it)."""
        now = self._monotonic()
        with self._lock:
            known = self._unwrapped.get(registry_id)
        if (
            known is not None
            and now - known.checked_at < self._check_seconds
            and (wanted is None or wanted in known.keys)
        ):
            return known
        rows = data_keys_of(self._meta, registry_id)
        if not rows:
            raise KeyUnavailable("the registry has no data key")
        try:
            fresh = _Unwrapped(
                now,
                {row.key_id: self._unwrap(row.wrapped_by, row.wrapped) for row in rows},
                rows[-1].key_id,
            )
        except KeyUnavailable:
            self.forget(registry_id)
            raise
        with self._lock:
            self._unwrapped[registry_id] = fresh
        return fresh

    def _unwrap(self, versioned: str, wrapped: bytes) -> bytes:
        return self._provider.unwrap(versioned, wrapped)

    def _versioned(self, key_identifier: str) -> str:
        if self._provider.is_versioned(key_identifier):
            return key_identifier
        return self._provider.newest(key_identifier)


class RegistryKeyring:
    """One registry's data keys, as `storage.encrypted` asks for them."""

    def __init__(self, keys: RegistryKeys, registry_id: int) -> None:
        self._keys = keys
        self._registry_id = registry_id

    def current(self) -> tuple[str, bytes]:
        found = self._keys._keys(self._registry_id)
        assert found.current is not None
        return found.current, found.keys[found.current]

    def key(self, key_id: str) -> bytes:
        found = self._keys._keys(self._registry_id, key_id)
        try:
            return found.keys[key_id]
        except KeyError:
            raise KeyUnavailable(f"no data key {key_id!r} in this registry") from None


def _new_key_id() -> str:
    """Short and unguessable-enough to never repeat within a registry."""
    return "dk-" + secrets.token_hex(6)
