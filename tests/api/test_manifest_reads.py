"""`app.ManifestReads`: manifest GETs and HEADs skip the router, and are answered as the
router and the exception middleware would answer them."""

from __future__ import annotations

import asyncio

import httpx

from dockyard.api import distribution
from dockyard.app import create_app


def test_the_manifest_route_is_the_routers_first(make_services) -> None:
    app = create_app(make_services(auth={"enabled": False}), background=False)
    assert app.routes[0] is distribution.MANIFEST_ROUTE


def test_refusals_are_answered_as_the_exception_middleware_would(make_services) -> None:
    app = create_app(make_services(admin_password="secret-pass"), background=False)

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

    asyncio.run(session())
