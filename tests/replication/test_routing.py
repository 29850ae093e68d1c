"""`dockyard.replication.routing`: which regions the global endpoint may send a request
to, best first, from the regions' routing views, their health and the preferences."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from dockyard.app import create_app
from dockyard.metadata.replication import ReplicationWrites
from dockyard.replication.routing import Preferences, Table, candidates
from dockyard.replication.routing_api import ROUTING_PATH
from dockyard.settings import RouterSettings

REGIONS = ["westus", "eastus", "centralus"]


def view(region: str, *replicas: tuple[str, bool], login: str = "reg.example.com") -> Any:
    return {
        "region": region,
        "registries": [
            {
                "name": "reg",
                "loginServer": login,
                "default": True,
                "replicas": [
                    {"region": name, "regionEndpointEnabled": on, "host": f"reg.{name}.geo.x"}
                    for name, on in replicas
                ],
            }
        ],
    }


def test_the_preferred_healthy_routed_region_comes_first() -> None:
    table = Table.of(
        [
            view("westus", ("westus", True), ("eastus", True)),
            view("eastus", ("eastus", True), ("westus", True)),
        ]
    )
    healthy = set(REGIONS)
    assert candidates(table, healthy, REGIONS, "reg.example.com") == ["westus", "eastus"]
    # centralus does not hold the registry; a region down is skipped.
    assert candidates(table, healthy - {"westus"}, REGIONS, "reg.example.com:443") == ["eastus"]
    # A host that names no registry is the default registry's, as in the regions.
    assert candidates(table, healthy, REGIONS, "127.0.0.1:5000") == ["westus", "eastus"]


def test_a_replica_any_region_takes_out_of_routing_gets_nothing_but_its_pins() -> None:
    table = Table.of(
        [
            view("westus", ("westus", True), ("eastus", False)),
            view("eastus", ("eastus", True), ("westus", True)),
        ]
    )
    healthy = set(REGIONS)
    assert candidates(table, healthy, ["eastus", "westus"], "reg.example.com") == ["westus"]
    assert candidates(table, healthy, REGIONS, "reg.eastus.geo.x") == ["eastus"]
    assert candidates(table, healthy, REGIONS, "REG.westus.geo.x:5000") == ["westus"]


def test_preferences_follow_the_client_network() -> None:
    settings = RouterSettings.model_validate(
        {
            "prefer": ["eastus"],
            "networks": [{"cidr": "10.1.0.0/16", "prefer": ["centralus", "westus"]}],
        }
    )
    preferences = Preferences(settings, REGIONS)
    assert preferences.order("192.0.2.1") == ["eastus", "westus", "centralus"]
    assert preferences.order("10.1.2.3") == ["centralus", "westus", "eastus"]
    assert preferences.order(None) == ["eastus", "westus", "centralus"]
    assert Preferences(RouterSettings(), REGIONS).order("10.1.2.3") == REGIONS


def test_a_region_shows_its_routing_view_to_the_peer_credential_only(make_services) -> None:
    services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "dockyard.example.com"},
        region={
            "name": "westus",
            "peers": [{"name": "eastus", "url": "http://127.0.0.1:9"}],
            "peer_secret": "s3cret-peer",
        },
    )
    registry = services.registries.for_host("dockyard.example.com")
    with services.meta.transaction() as tx:
        ReplicationWrites(tx).add(
            registry.id, "eastus", "eastus", {}, False, "Disabled", "Ready", "answered"
        )
    app = create_app(services, background=False)

    async def get(authorization: str | None = None) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
            headers = {"Authorization": authorization} if authorization else {}
            return await http.get(ROUTING_PATH, headers=headers)

    assert asyncio.run(get()).status_code == 401
    wrong = asyncio.run(get("Bearer s3cret-peeR"))
    assert wrong.status_code == 401 and "s3cret" not in wrong.text
    shown = asyncio.run(get("Bearer s3cret-peer")).json()
    assert shown == {
        "region": "westus",
        "registries": [
            {
                "name": "dockyard",
                "loginServer": "dockyard.example.com",
                "default": True,
                "replicas": [
                    {
                        "region": "westus",
                        "regionEndpointEnabled": True,
                        "host": "dockyard.westus.geo.example.com",
                    },
                    {
                        "region": "eastus",
                        "regionEndpointEnabled": False,
                        "host": "dockyard.eastus.geo.example.com",
                    },
                ],
            }
        ],
    }
