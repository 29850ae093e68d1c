"""A registry's secrets sealed again under its own keys once its encryption is on: the
admin passwords, credential sets and webhook addresses and headers it kept sealed with
the server's key (`secret.key`) from before. Each value is opened and sealed again in
the transaction that writes it, so a crash leaves every secret readable, under one key
or the other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.metadata.access import AccessStore, AccessWrites
from dockyard.metadata.cache_rules import CacheRuleStore, CacheRuleWrites
from dockyard.metadata.webhooks import WebhookStore, WebhookWrites

if TYPE_CHECKING:
    from dockyard.auth.secret_box import SecretBox
    from dockyard.metadata.records import RegistryRecord
    from dockyard.metadata.store import Metadata


def reseal_secrets(meta: Metadata, box: SecretBox, registry: RegistryRecord) -> int:
    """How many of the registry's secrets were sealed again under its keys."""
    rid, resealed = registry.id, 0

    def again(sealed: str) -> str:
        return box.seal(box.open(sealed, rid), rid)

    for password in AccessStore(meta).admin_passwords(rid):
        if box.needs_resealing(password.value, rid):
            with meta.transaction() as tx:
                AccessWrites(tx).set_admin_password(rid, password.name, again(password.value))
            resealed += 1
    for found in CacheRuleStore(meta).credential_sets(rid):
        if box.needs_resealing(found.sealed_password, rid):
            with meta.transaction() as tx:
                CacheRuleWrites(tx).update_credential_set(
                    found.id, None, again(found.sealed_password)
                )
            resealed += 1
    for webhook in WebhookStore(meta).webhooks(rid):
        values = {}
        if box.needs_resealing(webhook.sealed_service_uri, rid):
            values["service_uri"] = again(webhook.sealed_service_uri)
        headers = webhook.sealed_custom_headers
        if headers is not None and box.needs_resealing(headers, rid):
            values["custom_headers"] = again(headers)
        if values:
            with meta.transaction() as tx:
                WebhookWrites(tx).change(webhook, **values)
            resealed += len(values)
    return resealed
