"""The registry's ARM `policies.quarantinePolicy` in process: a PATCH turns it on and
off, the registry shows it (what it has just changed, in the same request), a PUT of the
registry carries it, and the registry API holds pushes while it is on."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import images
from management_paths import REGISTRY, VERSION

from dockyard.app import create_app
from dockyard.services import Services


def call(services: Services, method: str, path: str, **kwargs: Any) -> httpx.Response:
    app = create_app(services, background=False)

    async def session() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            return await http.request(method, path, **kwargs)

    return asyncio.run(session())


def policy(services: Services, method: str = "GET", status: str | None = None) -> Any:
    body = None
    if status is not None:
        body = {"properties": {"policies": {"quarantinePolicy": {"status": status}}}}
    answer = call(services, method, REGISTRY, params=VERSION, json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()["properties"]["policies"]["quarantinePolicy"]


def test_a_patch_turns_quarantine_on_and_off_and_pushes_are_held_meanwhile(
    services: Services,
) -> None:
    assert policy(services) == {"status": "disabled"}
    assert policy(services, "PATCH", "enabled") == {"status": "enabled"}
    assert policy(services) == {"status": "enabled"}

    config = b"{}"
    manifest = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "config": images.descriptor(images.OCI_CONFIG, config),
            "layers": [],
        }
    )
    oci = {"Content-Type": images.OCI_MANIFEST}
    upload = f"/v2/held/blobs/uploads/?digest={images.sha256_digest(config)}"
    assert call(services, "POST", upload, content=config).status_code == 201
    assert call(services, "PUT", "/v2/held/manifests/v1", content=manifest, headers=oci).is_success
    # Logins are off in this suite: every caller is the registry's owner, and pulls.
    assert call(services, "GET", "/v2/held/manifests/v1").status_code == 200
    shown = call(services, "GET", "/acr/v1/held/_manifests").json()["manifests"]
    assert [m["changeableAttributes"]["quarantineState"] for m in shown] == ["Quarantined"]

    assert policy(services, "PATCH", "disabled") == {"status": "disabled"}
    shown = call(services, "GET", "/acr/v1/held/_manifests").json()["manifests"]
    assert "quarantineState" not in shown[0]["changeableAttributes"]


def test_a_put_of_the_registry_carries_the_policy(services: Services) -> None:
    current = call(services, "GET", REGISTRY, params=VERSION).json()
    current["properties"]["policies"]["quarantinePolicy"] = {"status": "enabled"}
    answer = call(services, "PUT", REGISTRY, params=VERSION, json=current)
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"]["policies"]["quarantinePolicy"] == {"status": "enabled"}
    # The trust policy (Docker Content Trust) is still refused rather than pretended.
    current["properties"]["policies"]["trustPolicy"] = {"type": "Notary", "status": "enabled"}
    refused = call(services, "PUT", REGISTRY, params=VERSION, json=current)
    assert refused.status_code == 400
    assert "trustPolicy" in refused.json()["error"]["message"]
