"""`api/network.py` in process: the client address it resolves, the 403 it answers, the
paths it never blocks (geo-replication's peer endpoints among them), and the registry it
picks by Host."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from dockyard.api.network import caller_ip
from dockyard.app import create_app
from dockyard.metadata.network import NetworkWrites
from dockyard.services import Services


@pytest.fixture
def services(make_services) -> Services:
    built = make_services(
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        server={"trusted_proxies": ["10.0.0.0/8"]},
    )
    with built.meta.transaction() as tx:
        tx.create_registry("contoso", "contoso.example")
    built.registries.reload()
    return built


class Client:
    """Requests to the app in process, coming from `address`; `/whoami` echoes
    `caller_ip`."""

    def __init__(self, services: Services, address: str) -> None:
        app = create_app(services, background=False)

        async def whoami(request: Request) -> JSONResponse:
            return JSONResponse({"caller_ip": caller_ip(request)})

        app.router.routes.append(Route("/whoami", whoami))
        self._transport = httpx.ASGITransport(app=app, client=(address, 40000))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self._transport, base_url="http://localhost:5000"
            ) as http:
                return await http.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", path, **kwargs)


def restrict(services: Services, name: str, *rules: str, public: bool = True) -> None:
    registry = next(r for r in services.meta.registries() if r.name == name)
    with services.meta.transaction() as tx:
        writes = NetworkWrites(tx)
        writes.set_access(registry.id, public_network_access=public, default_action="Deny")
        for rule in rules:
            writes.add_rule(registry.id, rule, limit=200)


def test_open_registries_admit_everyone_and_see_the_peer(services: Services) -> None:
    http = Client(services, "192.0.2.1")
    assert http.get("/whoami").status_code == 200
    answer = http.get("/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
    assert answer.json() == {"caller_ip": "192.0.2.1"}  # not a trusted proxy


def test_a_refused_address_gets_403_denied_and_health_checks_pass(services: Services) -> None:
    restrict(services, "dockyard", "198.51.100.0/24")
    http = Client(services, "192.0.2.1")
    response = http.get("/v2/")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    (error,) = response.json()["errors"]
    assert error["code"] == "DENIED"
    assert "client address 192.0.2.1 is not allowed" in error["message"]
    assert "dockyard network-rule add -n dockyard --ip-address 192.0.2.1" in error["message"]
    head = http.head("/v2/")
    assert (head.status_code, head.content) == (403, b"")
    assert http.get("/healthz").status_code == 200
    assert http.get("/readyz").status_code == 200
    # geo-replication's peer endpoints take a peer's credential, not the rules: 401 here
    assert http.get("/_dockyard/replication/v1/ping").status_code == 401
    http = Client(services, "198.51.100.20")
    assert http.get("/whoami").status_code == 200


def test_the_registry_is_picked_by_host(services: Services) -> None:
    restrict(services, "contoso")
    http = Client(services, "192.0.2.1")
    assert http.get("/v2/", headers={"Host": "contoso.example"}).status_code == 403
    assert http.get("/whoami", headers={"Host": "localhost:5000"}).status_code == 200
    assert http.get("/whoami", headers={"Host": "unknown.example"}).status_code == 200


def test_forwarded_for_is_believed_from_a_trusted_proxy(services: Services) -> None:
    restrict(services, "dockyard", "198.51.100.0/24")
    http = Client(services, "10.0.0.2")
    forwarded = {"X-Forwarded-For": "192.0.2.66, 198.51.100.20"}
    assert http.get("/whoami", headers=forwarded).json() == {"caller_ip": "198.51.100.20"}
    assert http.get("/whoami", headers=forwarded).status_code == 200
    refused = http.get("/v2/", headers={"X-Forwarded-For": "192.0.2.66"})
    assert refused.status_code == 403
    assert "client address 192.0.2.66" in refused.json()["errors"][0]["message"]


def test_public_access_off_refuses_every_address(services: Services) -> None:
    restrict(services, "dockyard", "192.0.2.0/24", public=False)
    http = Client(services, "192.0.2.1")
    response = http.get("/v2/")
    assert response.status_code == 403
    assert "public network access" in response.json()["errors"][0]["message"]


def test_forwarded_proto_is_believed_from_a_trusted_proxy_only(services: Services) -> None:
    """Behind a proxy that terminates TLS, the token realm must say https."""
    proto = {"X-Forwarded-Proto": "https"}

    def realm(response: httpx.Response) -> str:
        assert response.status_code == 401
        return response.headers["www-authenticate"].split('realm="')[1].split('"')[0]

    behind_proxy = Client(services, "10.0.0.2")
    assert realm(behind_proxy.get("/v2/", headers=proto)) == "https://localhost:5000/oauth2/token"
    assert realm(behind_proxy.get("/v2/")) == "http://localhost:5000/oauth2/token"
    bogus = {"X-Forwarded-Proto": "gopher"}
    assert realm(behind_proxy.get("/v2/", headers=bogus)) == "http://localhost:5000/oauth2/token"
    direct = Client(services, "192.0.2.1")
    assert realm(direct.get("/v2/", headers=proto)) == "http://localhost:5000/oauth2/token"
