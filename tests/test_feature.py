"""`dockyard.feature`: a feature plugged in through `FEATURES` alone adds its routes and
its errors' status, and its pull and push policies refuse through core
(`core/policies.py`) on the registry API, as quarantine or a trust policy will."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from dockyard import app as app_module
from dockyard import services as services_module
from dockyard.common.errors import Denied, RegistryError
from dockyard.core.manifest_formats import Manifest
from dockyard.feature import Feature
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.services import Services
from dockyard.settings import Settings

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b'{"architecture": "amd64", "os": "linux"}'


class Quarantined(Denied):
    """The test feature's own error, with a status of its own."""


class Quarantine:
    """Refuses pulls of `held` tags and pushes to repositories under `held/`."""

    def check_pull(
        self, registry: RegistryRecord, repo: str, reference: str, record: ManifestRecord
    ) -> None:
        if reference == "held":
            raise Quarantined(f"{repo}@{record.digest} is in quarantine")

    def check_push(
        self, registry: RegistryRecord, repo: str, reference: str, digest: str, manifest: Manifest
    ) -> None:
        if repo.startswith("held/"):
            raise Denied(f"pushes to {repo} wait for a scan")


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("quarantine")

    return [Route("/quarantine/hello", hello)]


def _statuses() -> Mapping[type[RegistryError], int]:
    return {Quarantined: 451}


def _policies(services: Services) -> Sequence[Quarantine]:
    return [Quarantine()]


QUARANTINE = Feature(
    "quarantine",
    routes=_routes,
    statuses=_statuses,
    pull_policies=_policies,
    push_policies=_policies,
)


@pytest.fixture
def quarantine(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (app_module, services_module):
        monkeypatch.setattr(module, "FEATURES", (*module.FEATURES, QUARANTINE))


def _manifest() -> bytes:
    config = {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "sha256:" + hashlib.sha256(CONFIG).hexdigest(),
        "size": len(CONFIG),
    }
    return orjson.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []}
    )


def test_a_features_policies_routes_and_statuses(make_services, quarantine) -> None:
    app = app_module.create_app(make_services(auth={"enabled": False}), background=False)
    body, headers = _manifest(), {"Content-Type": OCI_MANIFEST}
    config_digest = "sha256:" + hashlib.sha256(CONFIG).hexdigest()

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            assert (await http.get("/quarantine/hello")).text == "quarantine"
            for repo in ("app", "held/app"):
                blob = await http.post(
                    f"/v2/{repo}/blobs/uploads/?digest={config_digest}", content=CONFIG
                )
                assert blob.status_code == 201, blob.text
            for tag in ("v1", "held"):
                put = await http.put(f"/v2/app/manifests/{tag}", content=body, headers=headers)
                assert put.status_code == 201, put.text
            refused_push = await http.put(
                "/v2/held/app/manifests/v1", content=body, headers=headers
            )
            assert refused_push.status_code == 403
            assert refused_push.json()["errors"][0]["code"] == "DENIED"
            assert (await http.get("/v2/held/app/manifests/v1")).status_code == 404
            assert (await http.get("/v2/app/manifests/v1")).status_code == 200
            refused_pull = await http.get("/v2/app/manifests/held")
            assert refused_pull.status_code == 451
            assert "in quarantine" in refused_pull.json()["errors"][0]["message"]
            assert (await http.head("/v2/app/manifests/held")).status_code == 451

    asyncio.run(session())
