"""`dockyard.replication.routing`: which regions the global endpoint may send a request
to, best first, from the regions' routing views, their health and the preferences."""

from __future__ import annotations

from typing import Any

from dockyard.replication.routing import Preferences, Table, candidates
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
