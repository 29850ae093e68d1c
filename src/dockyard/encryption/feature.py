"""Encryption at rest as a `Feature`: its service, `RegistryKeys` (a registry's
customer-managed key and data keys), on the key providers `[encryption]` configures,
and the blob stores of encrypted registries wrapped in `storage.encrypted`'s
`EncryptedBlobStore` (`encryption.stores`). The management API shows and changes it as
the registry's ARM `encryption`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.encryption.providers import KeyProviders
    from dockyard.encryption.registry_keys import RegistryKeys
    from dockyard.encryption.stores import EncryptingStores

    keys = RegistryKeys(services.meta, KeyProviders.from_settings(services.settings))
    services.stores.decorate(EncryptingStores(services.meta, keys))
    return {"registry_keys": keys}


ENCRYPTION = Feature("encryption", services=_services)
