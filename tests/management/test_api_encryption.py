"""The registry's ARM `encryption` in process, with local key files: a PATCH with a key
enables it (one-way) and the registry shows ACR's `keyVaultProperties`; a new key, or a
new version of a followed key, rotates it; what cannot be done is ARM's 400 with
nothing changed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from management_paths import REGISTRY, VERSION

from dockyard.app import create_app
from dockyard.services import Services


def call(services: Services, method: str, body: dict[str, Any] | None = None) -> httpx.Response:
    app = create_app(services, background=False)

    async def session() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            return await http.request(method, REGISTRY, params=VERSION, json=body)

    return asyncio.run(session())


def encryption(services: Services) -> dict[str, Any]:
    answer = call(services, "GET")
    assert answer.status_code == 200, answer.text
    return answer.json()["properties"]["encryption"]


def patch_encryption(services: Services, **value: Any) -> httpx.Response:
    return call(services, "PATCH", {"properties": {"encryption": value}})


def test_a_key_enables_encryption_and_the_registry_shows_it(services: Services) -> None:
    assert encryption(services) == {"status": "disabled"}
    local = services.registry_keys._provider.local  # type: ignore[attr-defined]
    first = local.create_key("kek")
    answer = patch_encryption(
        services,
        status="enabled",
        keyVaultProperties={"keyIdentifier": "local:kek", "identity": "client-1"},
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()["properties"]["encryption"]
    vault = shown["keyVaultProperties"]
    assert shown["status"] == "enabled"
    assert vault["keyIdentifier"] == "local:kek"
    assert vault["versionedKeyIdentifier"] == first
    assert vault["identity"] == "client-1"
    assert vault["keyRotationEnabled"] is True
    assert vault["lastKeyRotationTimestamp"] is None

    # `az acr encryption rotate-key` sends the registry back with its key: the newest
    # version of a followed key wraps the data keys from then on.
    second = local.add_version("local:kek")
    rotated = patch_encryption(services, status="enabled", keyVaultProperties=vault)
    assert rotated.status_code == 200, rotated.text
    vault = rotated.json()["properties"]["encryption"]["keyVaultProperties"]
    assert vault["versionedKeyIdentifier"] == second
    assert vault["lastKeyRotationTimestamp"] is not None

    refused = patch_encryption(services, status="disabled")
    assert refused.status_code == 400
    assert "cannot be disabled" in refused.json()["error"]["message"]
    assert encryption(services)["status"] == "enabled"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"status": "enabled"}, "keyIdentifier is required"),
        ({"status": "enabled", "keyVaultProperties": {"keyIdentifier": "vault:x"}}, "vault:x"),
        ({"status": "enabled", "keyVaultProperties": {"keyIdentifier": 7}}, "keyIdentifier"),
    ],
)
def test_what_cannot_enable_encryption_is_a_400_and_changes_nothing(
    services: Services, value: dict[str, Any], message: str
) -> None:
    refused = patch_encryption(services, **value)
    assert refused.status_code == 400, refused.text
    assert message in refused.json()["error"]["message"]
    assert encryption(services) == {"status": "disabled"}


def test_a_key_that_does_not_exist_is_a_clear_error(services: Services) -> None:
    answer = patch_encryption(
        services, status="enabled", keyVaultProperties={"keyIdentifier": "local:absent"}
    )
    assert answer.status_code == 400, answer.text
    assert "local:absent not found" in answer.json()["error"]["message"]
    assert encryption(services) == {"status": "disabled"}


def test_customer_managed_keys_are_premium_as_on_acr(services: Services) -> None:
    services.registry_keys._provider.local.create_key("kek")  # type: ignore[attr-defined]
    assert call(services, "PATCH", {"sku": {"name": "Standard"}}).status_code == 200
    refused = patch_encryption(
        services, status="enabled", keyVaultProperties={"keyIdentifier": "local:kek"}
    )
    assert refused.status_code == 403, refused.text
    assert "customer-managed keys" in refused.json()["error"]["message"]
    assert encryption(services) == {"status": "disabled"}
    assert call(services, "PATCH", {"sku": {"name": "Premium"}}).status_code == 200
    enabled = patch_encryption(
        services, status="enabled", keyVaultProperties={"keyIdentifier": "local:kek"}
    )
    assert enabled.status_code == 200, enabled.text
    down = call(services, "PATCH", {"sku": {"name": "Standard"}})
    assert down.status_code == 403, down.text
    assert "customer-managed keys" in down.json()["error"]["message"]
