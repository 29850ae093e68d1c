"""Geo-replication between real server processes on loopback, each region with its own
data directory and `[region]` (westus and eastus embedded, centralus on PostgreSQL and
a SeaweedFS bucket): an image pushed with skopeo to one region pulls
byte-identical from the others; a tag moved in two regions at once ends on one manifest
everywhere; an untag and a manifest's delete reach every region; a new replication
receives what the registry held; a region stopped while the others push, move the same
tag and delete holds back nothing between the others (a queue per region), catches up
once restarted (the outbox's retries), and all three serve the same repositories, tags
and digests; a webhook located in a region fires only once
that region holds the image."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import images
import pytest
from conftest import RegistryServer, free_port
from test_postgresql import db_upgrade
from test_webhooks import Receiver

pytestmark = pytest.mark.timeout(240)

TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")
SECRET = "geo-peer-secret-0123456789"
REGIONS = ("westus", "eastus", "centralus")
REPLICATIONS = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers"
    "/Microsoft.ContainerRegistry/registries/dockyard/replications"
)
VERSION = {"api-version": "2025-11-01"}
WEBHOOKS = REPLICATIONS.removesuffix("replications") + "webhooks"


@pytest.fixture(scope="module")
def regions(
    postgres, seaweedfs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RegistryServer]]:
    """Three regions, each replicating the default registry to the other two."""
    base = tmp_path_factory.mktemp("geo")
    ports = {name: free_port() for name in REGIONS}
    database = postgres.create_database("centralus")
    assert db_upgrade(database).returncode == 0
    external = (
        "--database-url",
        database,
        *seaweedfs.serve_args(seaweedfs.create_bucket("centralus")),
    )
    servers = {}
    for name in REGIONS:
        peers = [
            {"name": other, "url": f"http://127.0.0.1:{ports[other]}"}
            for other in REGIONS
            if other != name
        ]
        servers[name] = RegistryServer(
            base / name,
            base / f"{name}.log",
            port=ports[name],
            args=("--no-auth", "--region", name, *(external if name == "centralus" else ())),
            env={
                "DOCKYARD_REGION__PEERS": json.dumps(peers),
                "DOCKYARD_REGION__PEER_SECRET": SECRET,
                "DOCKYARD_OUTBOX__POLL_SECONDS": "0.2",
                "DOCKYARD_OUTBOX__RETRY_FIRST_SECONDS": "0.5",
                "DOCKYARD_OUTBOX__RETRY_MAX_SECONDS": "2",
            },
        )
    try:
        for server in servers.values():
            server.start()
        for name, server in servers.items():
            with httpx.Client(base_url=server.url, timeout=30) as http:
                for other in REGIONS:
                    if other == name:
                        continue
                    created = http.put(
                        f"{REPLICATIONS}/{other}", params=VERSION, json={"location": other}
                    )
                    assert created.status_code == 201, created.text
        yield servers
    finally:
        for server in servers.values():
            server.stop()
    assert not (servers["centralus"].data_dir / "dockyard.db").exists()
    assert not (servers["centralus"].data_dir / "blobs").exists()


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    """`check()` once it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {check}")
        time.sleep(0.2)


def tag_digest(server: RegistryServer, repo: str, tag: str) -> str | None:
    answer = httpx.head(
        f"{server.url}/v2/{repo}/manifests/{tag}",
        headers={"Accept": f"{images.OCI_MANIFEST}, {images.OCI_INDEX}"},
    )
    return answer.headers["Docker-Content-Digest"] if answer.status_code == 200 else None


def push_manifest(server: RegistryServer, repo: str, ref: str, body: bytes) -> None:
    answer = httpx.put(
        f"{server.url}/v2/{repo}/manifests/{ref}",
        content=body,
        headers={"Content-Type": images.OCI_MANIFEST},
    )
    assert answer.status_code == 201, answer.text


def test_an_image_pushed_in_one_region_pulls_byte_identical_from_the_others(
    regions: dict[str, RegistryServer], skopeo, tmp_path: Path
) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    skopeo(
        "copy",
        *TLS_OFF,
        "--preserve-digests",
        f"oci:{layout}:latest",
        f"docker://{west.host}/geo/busybox:1",
    )
    for server in (east, central):
        assert eventually(lambda s=server: tag_digest(s, "geo/busybox", "1")) == image.digest
        back = tmp_path / f"back-{server.port}"
        skopeo(
            "copy",
            *TLS_OFF,
            "--preserve-digests",
            f"docker://{server.host}/geo/busybox:1",
            f"oci:{back}:back",
        )
        assert images.oci_layout_ref(back, "back")["digest"] == image.digest
        _, blobs = images.read_oci_layout(back)
        assert blobs == {**image.blobs, image.digest: image.manifest}

    def caught_up() -> dict[str, Any] | None:
        listed = httpx.get(f"{west.url}{REPLICATIONS}", params=VERSION).json()["value"]
        shown = {r["name"]: r["properties"]["status"] for r in listed}
        return shown if all(s.get("queueDepth", 0) == 0 for s in shown.values()) else None

    shown = eventually(caught_up)
    assert {name: s["displayStatus"] for name, s in shown.items()} == {
        "westus": "Ready",
        "eastus": "Ready",
        "centralus": "Ready",
    }
    assert shown["eastus"]["lagSeconds"] == 0 and shown["eastus"]["lastError"] is None
    metrics = httpx.get(f"{west.url}/metrics").text
    for region in ("eastus", "centralus"):
        labels = f'{{region="{region}",registry="dockyard"}}'
        assert f"dockyard_replication_queue_depth{labels} 0.0" in metrics
        assert f"dockyard_replication_ready{labels} 1.0" in metrics

    # An untag in one region reaches the others.
    assert httpx.delete(f"{east.url}/v2/geo/busybox/manifests/1").status_code == 202
    for server in (west, central):
        eventually(lambda s=server: tag_digest(s, "geo/busybox", "1") is None)

    # So does a repository's delete (pushed again first: the untag left it).
    push_manifest(west, "geo/busybox", "2", image.manifest)
    eventually(lambda: tag_digest(central, "geo/busybox", "2"))
    assert httpx.delete(f"{central.url}/acr/v1/geo/busybox").status_code == 202
    for server in (west, east):
        eventually(
            lambda s=server: (
                "geo/busybox" not in httpx.get(f"{s.url}/v2/_catalog").json()["repositories"]
            )
        )


def test_a_tag_moved_in_two_regions_at_once_ends_on_one_manifest_everywhere(
    regions: dict[str, RegistryServer],
) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    image = images.busybox_image()
    variants = {}
    for server in (west, east):
        with httpx.Client(base_url=server.url) as http:
            for data in image.blobs.values():
                digest = images.sha256_digest(data)
                location = http.post("/v2/race/app/blobs/uploads/").headers["Location"]
                assert (
                    http.put(location, params={"digest": digest}, content=data).status_code == 201
                )
        manifest = json.loads(image.manifest)
        manifest["annotations"] = {"region": str(server.port)}
        variants[server.port] = images.json_bytes(manifest)
    # Both regions move the tag before either hears of the other's move.
    for server in (west, east):
        push_manifest(server, "race/app", "latest", variants[server.port])

    def converged() -> str | None:
        found = {tag_digest(server, "race/app", "latest") for server in (west, east, central)}
        return found.pop() if len(found) == 1 and None not in found else None

    winner = eventually(converged)
    assert winner in {images.sha256_digest(body) for body in variants.values()}

    # A manifest's delete reaches every region, with its tag.
    assert httpx.delete(f"{central.url}/v2/race/app/manifests/{winner}").status_code == 202
    for server in (west, east):
        eventually(
            lambda s=server: httpx.get(f"{s.url}/v2/race/app/manifests/{winner}").status_code == 404
        )
        assert tag_digest(server, "race/app", "latest") is None


def test_a_new_replication_receives_what_the_registry_held_before(
    regions: dict[str, RegistryServer],
) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    with httpx.Client(base_url=west.url, timeout=30) as http:
        gone = http.delete(f"{REPLICATIONS}/centralus", params=VERSION)
        assert gone.status_code == 202, gone.text
        eventually(lambda: http.get(gone.headers["Location"]).status_code == 200)

        image = images.busybox_image("arm64")
        for digest, data in image.blobs.items():
            location = http.post("/v2/late/app/blobs/uploads/").headers["Location"]
            assert http.put(location, params={"digest": digest}, content=data).status_code == 201
        push_manifest(west, "late/app", "1", image.manifest)
        # eastus gets it; centralus does not: eastus does not send on what it applied.
        assert eventually(lambda: tag_digest(east, "late/app", "1")) == image.digest
        locked = http.patch("/acr/v1/late/app/_tags/1", json={"writeEnabled": False})
        assert locked.status_code == 200, locked.text
        passed = http.patch(
            f"/acr/v1/late/app/_manifests/{image.digest}", json={"quarantineState": "Passed"}
        )
        assert passed.status_code == 200, passed.text
        time.sleep(1.0)
        assert tag_digest(central, "late/app", "1") is None

        created = http.put(
            f"{REPLICATIONS}/centralus", params=VERSION, json={"location": "centralus"}
        )
        assert created.status_code == 201, created.text
        status = eventually(
            lambda: (
                (s := http.get(created.headers["Azure-AsyncOperation"]).json())["status"]
                != "InProgress"
                and s
            )
        )
        assert status["status"] == "Succeeded"
        # Created means the region holds what the registry held.
        assert tag_digest(central, "late/app", "1") == image.digest
        # With its lock and quarantine state.
        tag = httpx.get(f"{central.url}/acr/v1/late/app/_tags/1").json()["tag"]
        assert tag["changeableAttributes"]["writeEnabled"] is False
        manifest = httpx.get(f"{central.url}/acr/v1/late/app/_manifests/{image.digest}").json()
        assert manifest["manifest"]["changeableAttributes"]["quarantineState"] == "Passed"
        shown = http.get(f"{REPLICATIONS}/centralus", params=VERSION).json()
        assert shown["properties"]["status"]["displayStatus"] == "Ready"
        assert tag_digest(central, "geo/busybox", "1") is None  # its delete was sent before


def snapshot(server: RegistryServer) -> dict[str, dict[str, str | None]]:
    """Every repository's tags and the digest each names, as the region serves them."""
    catalog = httpx.get(f"{server.url}/v2/_catalog").json()["repositories"]
    shown = {}
    for repo in catalog:
        tags = httpx.get(f"{server.url}/v2/{repo}/tags/list").json().get("tags") or []
        shown[repo] = {tag: tag_digest(server, repo, tag) for tag in tags}
    return shown


def test_a_region_down_for_a_while_catches_up_and_all_converge(
    regions: dict[str, RegistryServer],
) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    amd, arm = images.busybox_image("amd64"), images.busybox_image("arm64")
    for server in (west, central):
        with httpx.Client(base_url=server.url) as http:
            for image in (amd, arm):
                for digest, data in image.blobs.items():
                    location = http.post("/v2/fault/app/blobs/uploads/").headers["Location"]
                    put = http.put(location, params={"digest": digest}, content=data)
                    assert put.status_code == 201
    east.stop()
    try:
        push_manifest(west, "fault/app", "1", amd.manifest)
        push_manifest(central, "fault/app", "1", arm.manifest)  # the same tag, at once
        push_manifest(central, "fault/app", "2", arm.manifest)
        push_manifest(west, "fault/app", "gone", amd.manifest)
        assert httpx.delete(f"{west.url}/v2/fault/app/manifests/gone").status_code == 202

        # Each region has its queue: eastus being down holds back nothing between the
        # other two, which converge meanwhile; eastus's queue waits.
        def together() -> dict[str, Any] | None:
            seen = [snapshot(server) for server in (west, central)]
            return seen[0] if seen[0] == seen[1] and "gone" not in seen[0]["fault/app"] else None

        eventually(together)

        def queues() -> dict[str, int]:
            listed = httpx.get(f"{west.url}{REPLICATIONS}", params=VERSION).json()["value"]
            return {r["name"]: r["properties"]["status"].get("queueDepth", 0) for r in listed}

        waiting = eventually(lambda: (q := queues())["centralus"] == 0 and q)
        assert waiting["eastus"] > 0
    finally:
        east.restart()

    def converged() -> dict[str, Any] | None:
        seen = [snapshot(server) for server in (west, east, central)]
        return seen[0] if seen[0] == seen[1] == seen[2] else None

    state = eventually(converged, timeout=60)
    assert state["fault/app"]["1"] in {amd.digest, arm.digest}
    assert state["fault/app"]["2"] == arm.digest and "gone" not in state["fault/app"]

    # What the outage left: eastus's last error, shown by `dockyard replication`.
    def recovered() -> list[dict[str, Any]] | None:
        listed = json.loads(west.manage("replication", "list", "-r", "dockyard", "-o", "json"))
        return listed if all(r["properties"]["status"]["queueDepth"] == 0 for r in listed) else None

    listed = {r["name"]: r["properties"]["status"] for r in eventually(recovered)}
    assert listed["eastus"]["displayStatus"] == "Ready"
    assert "region eastus did not answer" in listed["eastus"]["lastError"]
    table = west.manage("replication", "show", "-n", "eastus", "-r", "dockyard")
    assert "eastus" in table and "Ready" in table


def test_a_webhook_located_in_a_region_fires_once_that_region_holds_the_image(
    regions: dict[str, RegistryServer],
) -> None:
    west, east, _ = (regions[name] for name in REGIONS)
    receiver = Receiver()
    try:
        # Kept by westus: one of its own region, one located in eastus; kept by eastus:
        # one of eastus (fired by the push eastus applies from westus).
        for server, name, location in (
            (west, "westhome", "westus"),
            (west, "eastfromwest", "eastus"),
            (east, "eastlocal", "eastus"),
        ):
            hook = {
                "location": location,
                "properties": {
                    "serviceUri": f"{receiver.url}/ok/{name}",
                    "actions": ["push"],
                    "scope": "regional/app:*",
                },
            }
            put = httpx.put(f"{server.url}{WEBHOOKS}/{name}", params=VERSION, json=hook)
            assert put.status_code == 201, put.text
        image = images.busybox_image("arm64")
        east.stop()
        try:
            with httpx.Client(base_url=west.url) as http:
                for digest, data in image.blobs.items():
                    location = http.post("/v2/regional/app/blobs/uploads/").headers["Location"]
                    put = http.put(location, params={"digest": digest}, content=data)
                    assert put.status_code == 201
            push_manifest(west, "regional/app", "1", image.manifest)
            pushed = receiver.wait("/ok/westhome", lambda got: len(got) == 1)
            assert pushed[0].body["target"]["digest"] == image.digest
            time.sleep(2.0)  # several of the outbox's retries
            assert receiver.at("/ok/eastfromwest") == []  # eastus does not hold it: it is down
        finally:
            east.restart()
        for path in ("/ok/eastfromwest", "/ok/eastlocal"):
            got = receiver.wait(path, lambda got: len(got) == 1, timeout=60)
            assert got[0].body["action"] == "push"
            assert got[0].body["target"]["digest"] == image.digest
        assert tag_digest(east, "regional/app", "1") == image.digest
        time.sleep(1.0)
        # One push, one notice each: eastus applies the manifest and its tag as one push.
        assert [len(receiver.at(f"/ok/{name}")) for name in ("westhome", "eastfromwest")] == [1, 1]
        assert [n.body["target"].get("tag") for n in receiver.at("/ok/eastlocal")] == ["1"]
    finally:
        receiver.stop()


def test_a_lock_and_a_quarantine_state_set_in_one_region_bind_in_all(
    regions: dict[str, RegistryServer],
) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    one, two = images.busybox_image("amd64"), images.busybox_image("arm64")
    for server, image in ((central, one), (central, two), (west, two)):
        with httpx.Client(base_url=server.url) as http:
            for digest, data in image.blobs.items():
                location = http.post("/v2/locked/app/blobs/uploads/").headers["Location"]
                put = http.put(location, params={"digest": digest}, content=data)
                assert put.status_code == 201
    push_manifest(central, "locked/app", "1", one.manifest)
    for server in (west, east):
        eventually(lambda s=server: tag_digest(s, "locked/app", "1"))

    locked = httpx.patch(f"{east.url}/acr/v1/locked/app/_tags/1", json={"writeEnabled": False})
    assert locked.status_code == 200, locked.text
    passed = httpx.patch(
        f"{east.url}/acr/v1/locked/app/_manifests/{one.digest}", json={"quarantineState": "Passed"}
    )
    assert passed.status_code == 200, passed.text

    def attributes(server: RegistryServer) -> tuple[bool, str | None] | None:
        tag = httpx.get(f"{server.url}/acr/v1/locked/app/_tags/1").json()["tag"]
        manifest = httpx.get(f"{server.url}/acr/v1/locked/app/_manifests/{one.digest}").json()
        shown = manifest["manifest"]["changeableAttributes"].get("quarantineState")
        found = (tag["changeableAttributes"]["writeEnabled"], shown)
        return found if found == (False, "Passed") else None

    for server in (west, central):
        eventually(lambda s=server: attributes(s))
        moved = httpx.put(
            f"{server.url}/v2/locked/app/manifests/1",
            content=two.manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert moved.status_code == 403, moved.text
        assert tag_digest(server, "locked/app", "1") == one.digest


def test_a_large_blob_reaches_every_region_in_parts(regions: dict[str, RegistryServer]) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    layer = os.urandom(9 << 20)  # over one 8 MiB part: sent in two, into a session there
    config = images.json_bytes({"architecture": "amd64", "os": "linux"})
    manifest = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "config": images.descriptor(images.OCI_CONFIG, config),
            "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer)],
        }
    )
    with httpx.Client(base_url=west.url, timeout=60) as http:
        for data in (config, layer):
            location = http.post("/v2/large/app/blobs/uploads/").headers["Location"]
            put = http.put(location, params={"digest": images.sha256_digest(data)}, content=data)
            assert put.status_code == 201
    push_manifest(west, "large/app", "1", manifest)
    for server in (east, central):
        assert eventually(lambda s=server: tag_digest(s, "large/app", "1"), timeout=60)
        got = httpx.get(
            f"{server.url}/v2/large/app/blobs/{images.sha256_digest(layer)}",
            follow_redirects=True,
            timeout=60,
        )
        assert got.status_code == 200 and got.content == layer
