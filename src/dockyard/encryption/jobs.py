"""Encryption's background job: for every encrypted registry, follow a non-versioned key
to its newest version (the data keys are rewrapped, ACR follows new Key Vault versions
within an hour), seal its secrets again under its own keys, and encrypt the blobs
stored before encryption was turned on (or in the seconds another node took to notice
it), every `[encryption] interval_seconds`, at once after this process turned
encryption on, and when a registry's conversion may start (`SETTLED_SECONDS` after
encryption was turned on: every process's stores encrypt by then, so none looks for a
plaintext copy the conversion removed). Several processes may run it at once: each
conversion writes the encrypted copy completely before the plaintext goes, and a second
conversion of the same blob finds nothing to do."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services
    from dockyard.storage.encrypted import EncryptedBlobStore

log = logging.getLogger("dockyard")

# How often the job looks whether this process has just turned encryption on.
_WAKE_SECONDS = 1.0


def encrypt_registries_once(services: Services, now: datetime | None = None) -> float | None:
    """One round; a log line per registry whose key moved or whose blobs were encrypted.
    The seconds until a registry whose plaintext blobs wait for `SETTLED_SECONDS` may
    have them converted, if one waits."""
    from dockyard.encryption.resealing import reseal_secrets
    from dockyard.encryption.stores import SETTLED_SECONDS
    from dockyard.metadata.encryption import encryption_enabled_at
    from dockyard.storage.encrypted import EncryptedBlobStore

    keys, now = services.registry_keys, now or datetime.now(UTC)
    enabled_at = encryption_enabled_at(services.meta)
    waits: list[float] = []
    for registry in services.meta.registries():
        if registry.id not in enabled_at:
            continue
        rotated = keys.follow_newest(registry)
        resealed = reseal_secrets(services.meta, services.box, registry)
        store = services.stores.for_registry(registry.name)
        converted = rewritten = 0
        if isinstance(store, EncryptedBlobStore):
            settles_in = SETTLED_SECONDS - (now - enabled_at[registry.id]).total_seconds()
            if settles_in > 0:
                waits.append(settles_in)
            else:
                converted = sum(
                    store.encrypt_existing(digest) for digest in list(store.legacy_digests())
                )
            rewritten = _rewrite_under_current_key(services, registry, store)
        if rotated or resealed or converted or rewritten:
            fields = {
                "registry": registry.name,
                "key_rotated": rotated,
                "secrets_resealed": resealed,
                "encrypted": converted,
                "rewritten": rewritten,
            }
            log.info("registry encryption applied", extra={"fields": fields})
    return min(waits, default=None)


def _rewrite_under_current_key(
    services: Services, registry: RegistryRecord, store: EncryptedBlobStore
) -> int:
    """After a new data key: every blob still under an older one written again under
    the current key; once a whole pass found none left, the older keys are retired."""
    keys = services.registry_keys
    older = keys.older_data_keys(registry)
    current = keys.current_data_key(registry)
    if not older or current is None:
        return 0
    keys.forget(registry.id)  # the store's keyring: the database's current key, now
    rewritten = sum(
        store.reencrypt(digest, {current}) for digest in list(store.encrypted_digests())
    )
    if not rewritten:
        keys.retire(registry, older)
    return rewritten


async def encrypt_registries(services: Services) -> None:
    """`encrypt_registries_once` every `interval_seconds`, soon after this process
    turned a registry's encryption on, and when a registry's conversion may start."""
    keys, interval = services.registry_keys, services.settings.encryption.interval_seconds
    seen, waited, due = keys.generation, 0.0, interval
    while True:
        await asyncio.sleep(_WAKE_SECONDS)
        waited += _WAKE_SECONDS
        if keys.generation == seen and waited < due:
            continue
        seen, waited = keys.generation, 0.0
        try:
            settles_in = await asyncio.to_thread(encrypt_registries_once, services)
        except Exception:
            log.exception("registry encryption failed")
            settles_in = None
        due = interval if settles_in is None else min(interval, settles_in)
