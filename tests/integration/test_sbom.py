"""SBOMs on push with real clients against a real server: skopeo pushes the busybox
test image (both platforms of its index), the server's background work attaches an
SPDX and a CycloneDX document to each platform, found through the referrers API with
plain HTTP (what `oras discover` calls) and pulled with oras-py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import oras.client
import pytest
from conftest import RegistryServer

pytestmark = pytest.mark.timeout(120)

TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")
SPDX_JSON = "application/spdx+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A server that makes SBOMs of every registry's pushes (they are off by default)."""
    base = tmp_path_factory.mktemp("sbom-registry")
    env = {"DOCKYARD_SBOM__REGISTRIES": '["*"]'}
    with RegistryServer(base / "data", base / "dockyard.log", env=env).start() as server:
        yield server


@pytest.fixture
def http(registry: RegistryServer) -> Iterator[httpx.Client]:
    with registry.client() as client:
        yield client


def wait_for_referrers(http, repo: str, digest: str, count: int, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/v2/{repo}/referrers/{digest}")
        assert response.status_code == 200, response.text
        found = response.json()["manifests"]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_skopeo_push_gets_sboms_that_oras_pulls(registry, skopeo, http, tmp_path: Path) -> None:
    index = images.busybox_index()
    layout = images.write_oci_layout(tmp_path / "layout", {"multi": index})
    dest = f"docker://{registry.host}/tools/busybox:1"
    skopeo("copy", *TLS_OFF, "--all", "--preserve-digests", f"oci:{layout}:multi", dest)

    for child in index.children:
        found = wait_for_referrers(http, "tools/busybox", child.digest, 2)
        assert sorted(r["artifactType"] for r in found) == [SPDX_JSON, CYCLONEDX_JSON], (
            found,
            registry.stderr_tail(),
        )
        by_type = {r["artifactType"]: r for r in found}
        only_spdx = http.get(
            f"/v2/tools/busybox/referrers/{child.digest}", params={"artifactType": SPDX_JSON}
        ).json()["manifests"]
        assert only_spdx == [by_type[SPDX_JSON]]

        client = oras.client.OrasClient(hostname=registry.host, insecure=True)
        out = tmp_path / child.digest.removeprefix("sha256:")
        pulled = client.pull(
            target=f"{registry.host}/tools/busybox@{by_type[SPDX_JSON]['digest']}",
            outdir=str(out),
        )
        [path] = pulled
        assert Path(path).name == "sbom.spdx.json"
        spdx = json.loads(Path(path).read_text())
        assert spdx["spdxVersion"] == "SPDX-2.3"
        assert spdx["name"] == f"{registry.host}/tools/busybox@{child.digest}"
        assert spdx["packages"][0]["versionInfo"] == child.digest

        pulled = client.pull(
            target=f"{registry.host}/tools/busybox@{by_type[CYCLONEDX_JSON]['digest']}",
            outdir=str(out),
        )
        cyclonedx = json.loads(Path(pulled[0]).read_text())
        assert cyclonedx["bomFormat"] == "CycloneDX"
        assert cyclonedx["metadata"]["component"]["version"] == child.digest

    listed = http.get("/acr/v1/tools/busybox/_manifests").json()["manifests"]
    # The index, its two platforms, and two SBOMs of each.
    assert len(listed) == 1 + 2 + 4
