"""The scanner on the SBOM feature's inventory: an image whose layers hold Debian 12's
dpkg status, Python site-packages and node_modules at versions real advisories affect
(tests/osv_facts.py), pushed through the registry API and scanned by the scanning
feature through `sbom.inventory.image_packages`: each advisory found, by the package's
OSV name (Debian's by its source package)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import image_contents as contents
import pytest
from endpoint import AppEndpoint
from osv_facts import ALL, write_zip

from dockyard.services import Services


@pytest.fixture
def endpoint(make_services) -> Iterator[AppEndpoint]:
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    app = AppEndpoint(services)
    yield app
    app.close()


def test_the_scanner_finds_the_advisories_of_the_inventory(
    endpoint: AppEndpoint, tmp_path: Path
) -> None:
    services = endpoint.services
    services.vuln_db.import_files([write_zip(tmp_path / "all.zip", ALL)])
    layer = contents.vulnerable_layer()
    digest = endpoint.push_image("app/scanned", contents.oci_image([layer]), "v1")
    registry = services.registries.for_host("localhost:5000")
    outcome = services.scanner.scan(registry, "app/scanned", digest)
    assert outcome is not None
    found = {(f.advisory, f.package, f.installed) for f in outcome.findings}
    assert {
        ("DSA-5514-1", "glibc", "2.36-9+deb12u1"),
        ("GHSA-j8r2-6x86-q33q", "requests", "2.30.0"),
        ("GHSA-35jh-r3h4-6jhm", "lodash", "4.17.15"),
    } <= found
