"""`dockyard.core.registries`: the regional login servers a region answers beside each
registry's login server."""

from __future__ import annotations

import pytest

from dockyard.core.registries import Registries, regional_host
from dockyard.metadata.store import Metadata


@pytest.mark.parametrize(
    ("login_server", "expected"),
    [
        ("myreg.azurecr.io", "myreg.eastus.geo.azurecr.io"),
        ("Dockyard.Example.com:5443", "dockyard.eastus.geo.example.com"),
        ("contoso.localhost:5000", "contoso.eastus.geo.localhost"),
        ("localhost:5000", "dockyard.eastus.geo.localhost"),
        ("127.0.0.1:5000", None),
        ("[::1]:5000", None),
    ],
)
def test_the_regional_host_follows_the_login_server(login_server: str, expected: str) -> None:
    assert regional_host("dockyard", login_server, "East US") == expected


def test_a_region_answers_for_its_regional_names_only(meta: Metadata) -> None:
    with meta.transaction() as tx:
        tx.create_registry("dockyard", "127.0.0.1:5000", "Premium")
        tx.create_registry("contoso", "contoso.example.com", "Premium")
    registries = Registries(meta, "dockyard", region="westus")
    registries.reload()
    assert registries.for_host("contoso.westus.geo.example.com:5001").name == "contoso"
    assert registries.serving("contoso.westus.geo.example.com").name == "contoso"
    # Another region's regional name is no name of this region's: the default answers.
    assert registries.for_host("contoso.eastus.geo.example.com").name == "dockyard"
    assert registries.for_host("contoso.example.com").name == "contoso"
