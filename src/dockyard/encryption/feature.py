"""Encryption at rest as a `Feature`: its service, `RegistryKeys` (a registry's
customer-managed key and data keys), on the key providers `[encryption]` configures,
and the blob stores of encrypted registries wrapped in `storage.encrypted`'s
`EncryptedBlobStore` (`encryption.stores`). The management API shows and changes it as
the registry's ARM `encryption`."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer

    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.encryption.providers import KeyProviders
    from dockyard.encryption.registry_keys import RegistryKeys
    from dockyard.encryption.stores import EncryptingStores

    settings = services.settings
    keys = RegistryKeys(
        services.meta,
        KeyProviders.from_settings(settings),
        check_seconds=settings.encryption.check_seconds,
    )
    encrypting = EncryptingStores(services.meta, keys)
    services.stores.decorate(encrypting)
    services.box.use_registry_keys(encrypting.sealer_for, encrypting.opener_for)
    return {"registry_keys": keys}


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.encryption.jobs import encrypt_registries

    return [encrypt_registries(services)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import keys

    keys.register(app)


ENCRYPTION = Feature("encryption", services=_services, jobs=_jobs, cli=_cli)
