"""`app.ManifestReads`: manifest GETs and HEADs skip the router, and are answered as the
router and the exception middleware would answer them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from dockyard.api import distribution
from dockyard.app import create_app
from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings


def test_the_manifest_route_is_the_routers_first(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, auth={"enabled": False})
    prepare(settings)
    services = build_services(settings)
    try:
        app = create_app(services, background=False)
        assert app.routes[0] is distribution.MANIFEST_ROUTE
    finally:
        services.close()


def test_refusals_are_answered_as_the_exception_middleware_would(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, admin_password="secret-pass")
    prepare(settings)
    services = build_services(settings)
    app = create_app(services, background=False)

    async def session() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            get = await http.get("/v2/app/manifests/v1")
            assert get.status_code == 401
            assert get.json()["errors"][0]["code"] == "UNAUTHORIZED"
            assert 'scope="repository:app:pull"' in get.headers["www-authenticate"]
            head = await http.head("/v2/app/manifests/v1")
            assert (head.status_code, head.content) == (401, b"")
            assert "www-authenticate" in head.headers
            logged_in = ("dockyard", "secret-pass")
            missing = await http.get("/v2/app/manifests/v1", auth=logged_in)
            assert missing.status_code == 404
            assert missing.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
            bad = await http.get("/v2/app/manifests/-bad-", auth=logged_in)
            assert bad.status_code == 400
            assert bad.json()["errors"][0]["code"] == "MANIFEST_INVALID"

    try:
        asyncio.run(session())
    finally:
        services.close()
