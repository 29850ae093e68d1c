"""The registry's ARM `policies.trustPolicy` in process: ACR's `{type, status}` as az
sends it, plus Dockyard's `document` (the signature trust policy); enabling without a
document, or with one naming a store the registry lacks, is ARM's 400 with nothing
changed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from management_paths import REGISTRY, VERSION

from dockyard.app import create_app
from dockyard.services import Services

DOCUMENT = {
    "version": "1.0",
    "trustPolicies": [
        {
            "name": "release",
            "registryScopes": ["*"],
            "signatureVerification": {"level": "strict"},
            "trustStores": ["cosign:release"],
        }
    ],
}


def call(services: Services, method: str, body: dict[str, Any] | None = None) -> httpx.Response:
    app = create_app(services, background=False)

    async def session() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            return await http.request(method, REGISTRY, params=VERSION, json=body)

    return asyncio.run(session())


def trust_policy(services: Services) -> dict[str, Any]:
    answer = call(services, "GET")
    assert answer.status_code == 200, answer.text
    return answer.json()["properties"]["policies"]["trustPolicy"]


def patch(services: Services, **value: Any) -> httpx.Response:
    return call(services, "PATCH", {"properties": {"policies": {"trustPolicy": value}}})


def test_a_document_and_status_are_set_and_shown(services: Services) -> None:
    assert trust_policy(services) == {"type": "Notary", "status": "disabled"}
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    services.trust.add_store(services.registries.for_host(""), "cosign", "release", public)
    answer = patch(services, type="Notary", status="enabled", document=DOCUMENT)
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["policies"]["trustPolicy"] == {
        "type": "Notary",
        "status": "enabled",
        "document": DOCUMENT,
    }
    # az's own switch, without the document: kept
    assert patch(services, type="Notary", status="disabled").status_code == 200
    assert trust_policy(services) == {"type": "Notary", "status": "disabled", "document": DOCUMENT}


def test_what_cannot_be_enforced_is_a_400_and_changes_nothing(services: Services) -> None:
    answer = patch(services, type="Notary", status="enabled")
    assert answer.status_code == 400, answer.text
    assert "no trust policy document" in answer.json()["error"]["message"]
    answer = patch(services, status="enabled", document=DOCUMENT)
    assert answer.status_code == 400
    assert "no such trust store: cosign:release" in answer.json()["error"]["message"]
    answer = patch(services, status="enabled", document={"version": "1.0"})
    assert answer.status_code == 400
    assert trust_policy(services) == {"type": "Notary", "status": "disabled"}


def test_a_new_registry_cannot_start_with_a_trust_policy(services: Services) -> None:
    app = create_app(services, background=False)
    body = {
        "location": "westus",
        "sku": {"name": "Premium"},
        "properties": {"policies": {"trustPolicy": {"status": "enabled", "document": DOCUMENT}}},
    }

    async def session() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            path = REGISTRY.rsplit("/", 1)[0] + "/fresh"
            return await http.put(path, params=VERSION, json=body)

    answer = asyncio.run(session())
    assert answer.status_code == 400, answer.text
    assert "a new registry has no trust stores" in answer.json()["error"]["message"]
    assert all(r.name != "fresh" for r in services.meta.registries())
