"""Encryption at rest as a `Feature`: its service, `RegistryKeys` (a registry's
customer-managed key and data keys), on the key providers `[encryption]` configures.
The management API shows and changes it as the registry's ARM `encryption`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.encryption.providers import KeyProviders
    from dockyard.encryption.registry_keys import RegistryKeys

    settings = services.settings
    providers = KeyProviders.from_settings(settings)
    return {"registry_keys": RegistryKeys(services.meta, providers)}


ENCRYPTION = Feature("encryption", services=_services)
