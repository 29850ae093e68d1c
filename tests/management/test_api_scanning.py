"""The registry's ARM `policies.scanPolicy` and `policies.vulnerabilityPolicy` (Dockyard
extensions) in process: shown on every GET, set by a PATCH, a bad severity ARM's 400
with nothing changed, and a body that does not name them (what az sends for its own
policies) leaving them as they are."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
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


def policies(services: Services) -> dict[str, Any]:
    answer = call(services, "GET")
    assert answer.status_code == 200, answer.text
    return answer.json()["properties"]["policies"]


def test_the_vulnerability_policy_is_shown_and_set(services: Services) -> None:
    shown = policies(services)
    assert shown["scanPolicy"] == {"status": "disabled", "quarantineWriter": "disabled"}
    assert shown["vulnerabilityPolicy"] == {
        "status": "disabled",
        "severity": "critical",
        "allowlist": [],
        "repositories": [],
    }
    wanted = {
        "status": "enabled",
        "severity": "High",
        "allowlist": ["CVE-2023-4911"],
        "repositories": ["app/*"],
    }
    answer = call(
        services,
        "PATCH",
        {
            "properties": {
                "policies": {
                    "scanPolicy": {"status": "enabled", "quarantineWriter": "enabled"},
                    "vulnerabilityPolicy": wanted,
                }
            }
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["policies"]["vulnerabilityPolicy"] == dict(
        wanted, severity="high"
    )
    record = services.registries.for_host("localhost:5000")
    assert services.scan_policies.get(record.id).scan_on_push is True
    assert services.scan_policies.get(record.id).quarantine_writer is True

    # what `az acr config retention update` sends: the other policies stay
    retention = {"retentionPolicy": {"status": "enabled", "days": 9}}
    assert call(services, "PATCH", {"properties": {"policies": retention}}).status_code == 200
    assert policies(services)["vulnerabilityPolicy"]["status"] == "enabled"

    refused = call(
        services,
        "PATCH",
        {"properties": {"policies": {"vulnerabilityPolicy": {"severity": "severe"}}}},
    )
    assert refused.status_code == 400
    assert "severity must be one of" in refused.json()["error"]["message"]
    assert policies(services)["vulnerabilityPolicy"]["severity"] == "high"
