"""Geo-replication between real server processes on loopback, each region with its own
data directory and `[region]` (westus and eastus embedded, centralus on PostgreSQL and
a SeaweedFS bucket): an image pushed with skopeo to one region pulls
byte-identical from the others; a tag moved in two regions at once ends on one manifest
everywhere; an untag and a manifest's delete reach every region; a new replication
receives what the registry held; a region stopped while the others push, move the same
tag and delete holds back nothing between the others (a queue per region), catches up
once restarted (the outbox's retries), and all three serve the same repositories, tags
and digests; a webhook located in a region fires only once that region holds the
image; a lock and a quarantine state set in one region bind in all.

The global endpoint (`dockyard router`) in front of them: skopeo pushes and pulls through
it; with a region stopped it keeps answering; a replica out of routing gets no traffic;
a regional host name pins its region; with logins on, the token flow goes through it,
and a token one region issued is good at the next once the first is down."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import images
import pytest
from conftest import RegistryServer, dockyard_command, free_port
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
LOGIN_SERVER = "dockyard.example.test"  # every region's; clients reach them by address
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
                "DOCKYARD_REGISTRY__LOGIN_SERVER": LOGIN_SERVER,
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


class RouterProcess:
    """`dockyard router` on a loopback port, in front of `regions` (name -> server)."""

    def __init__(self, regions: dict[str, RegistryServer], log: Path, prefer: list[str]) -> None:
        self.port = free_port()
        self.log = log
        peers = [{"name": name, "url": server.url} for name, server in regions.items()]
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")},
            "DOCKYARD_REGION__PEERS": json.dumps(peers),
            "DOCKYARD_REGION__PEER_SECRET": SECRET,
            "DOCKYARD_ROUTER__PREFER": json.dumps(prefer),
            "DOCKYARD_ROUTER__CHECK_SECONDS": "0.2",
        }
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> RouterProcess:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [*dockyard_command(), "router", "--listen", self.host],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=self.env,
                start_new_session=True,
            )
        eventually(self._ready, timeout=30)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
        return False

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
            self.proc = None

    def region_of(self, path: str, host: str | None = None) -> tuple[int, str | None]:
        """A HEAD through the router: its status and the region that answered."""
        answer = httpx.head(
            f"{self.url}{path}",
            headers={
                "Accept": f"{images.OCI_MANIFEST}, {images.OCI_INDEX}",
                **({"Host": host} if host else {}),
            },
        )
        return answer.status_code, answer.headers.get("X-Dockyard-Region")

    def healthy(self) -> set[str]:
        return set(httpx.get(f"{self.url}/readyz").json()["regions"])


@pytest.fixture(scope="module")
def router(
    regions: dict[str, RegistryServer], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RouterProcess]:
    """The global endpoint; eastus is preferred, then westus, then centralus."""
    log = tmp_path_factory.mktemp("router") / "router.log"
    process = RouterProcess(regions, log, ["eastus", "westus", "centralus"]).start()
    try:
        yield process
    finally:
        process.stop()


def test_the_global_endpoint_takes_pushes_and_pulls_and_answers_with_a_region_down(
    regions: dict[str, RegistryServer], router: RouterProcess, skopeo, tmp_path: Path
) -> None:
    west, east, central = (regions[name] for name in REGIONS)
    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    skopeo(
        "copy",
        *TLS_OFF,
        "--preserve-digests",
        f"oci:{layout}:latest",
        f"docker://{router.host}/global/busybox:1",
    )
    # The preferred region took the push; a blob GET is redirected to it.
    assert tag_digest(east, "global/busybox", "1") == image.digest
    assert router.region_of("/v2/global/busybox/manifests/1") == (200, "eastus")
    layer = next(iter(image.blobs))
    redirected = httpx.get(f"{router.url}/v2/global/busybox/blobs/{layer}")
    assert redirected.status_code == 307
    location = redirected.headers["Location"]
    assert location.startswith(f"{east.url}/v2/global/busybox/blobs/{layer}?_dockyard_route=")
    assert httpx.get(location).content == image.blobs[layer]
    for server in (west, central):
        assert eventually(lambda s=server: tag_digest(s, "global/busybox", "1")) == image.digest

    east.stop()
    try:
        # At once, before a health check: the refused connection moves it to westus.
        assert router.region_of("/v2/global/busybox/manifests/1") == (200, "westus")
        eventually(lambda: "eastus" not in router.healthy())
        back = tmp_path / "back"
        skopeo(
            "copy",
            *TLS_OFF,
            "--preserve-digests",
            f"docker://{router.host}/global/busybox:1",
            f"oci:{back}:back",
        )
        _, blobs = images.read_oci_layout(back)
        assert blobs == {**image.blobs, image.digest: image.manifest}
        assert router.region_of("/v2/global/busybox/manifests/1") == (200, "westus")
    finally:
        east.restart()
    eventually(lambda: "eastus" in router.healthy())
    assert router.region_of("/v2/global/busybox/manifests/1") == (200, "eastus")


def test_a_replica_out_of_routing_gets_no_traffic_and_a_regional_name_pins_it(
    regions: dict[str, RegistryServer], router: RouterProcess
) -> None:
    west = regions["westus"]
    path = "/v2/global/busybox/manifests/1"

    def routing(enabled: bool) -> None:
        changed = httpx.patch(
            f"{west.url}{REPLICATIONS}/eastus",
            params=VERSION,
            json={"properties": {"regionEndpointEnabled": enabled}},
        )
        assert changed.status_code == 200, changed.text

    routing(False)
    try:
        eventually(lambda: router.region_of(path) == (200, "westus"))
        assert {router.region_of(path)[1] for _ in range(20)} == {"westus"}
        # The regional host name reaches eastus all the same: the client pinned it.
        assert router.region_of(path, "dockyard.eastus.geo.example.test") == (200, "eastus")
        assert router.region_of(path, "dockyard.centralus.geo.example.test") == (
            200,
            "centralus",
        )
    finally:
        routing(True)
    eventually(lambda: router.region_of(path) == (200, "eastus"))


PASSWORD = "geo-admin-password-0123"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two embedded regions with logins on (the same admin password, as an operator sets
    it in each), westus replicating to eastus, and a router preferring westus."""
    base = tmp_path_factory.mktemp("guarded")
    names = ("westus", "eastus")
    ports = {name: free_port() for name in names}
    servers = {}
    for name in names:
        other = next(n for n in names if n != name)
        servers[name] = RegistryServer(
            base / name,
            base / f"{name}.log",
            port=ports[name],
            args=("--region", name, "--workers", "1"),
            env={
                "DOCKYARD_ADMIN_PASSWORD": PASSWORD,
                "DOCKYARD_REGISTRY__LOGIN_SERVER": LOGIN_SERVER,
                "DOCKYARD_REGION__PEERS": json.dumps(
                    [{"name": other, "url": f"http://127.0.0.1:{ports[other]}"}]
                ),
                "DOCKYARD_REGION__PEER_SECRET": SECRET,
                "DOCKYARD_OUTBOX__POLL_SECONDS": "0.2",
            },
        )
    router = RouterProcess(servers, base / "router.log", ["westus", "eastus"])
    try:
        for server in servers.values():
            server.start()
        servers["westus"].manage("replication", "create", "-r", "dockyard", "-l", "eastus")
        router.start()
        yield {"router": router, **servers}
    finally:
        router.stop()
        for server in servers.values():
            server.stop()


def test_the_token_flow_goes_through_the_global_endpoint_and_outlives_its_issuer(
    guarded: dict[str, Any], skopeo, tmp_path: Path
) -> None:
    router, west = guarded["router"], guarded["westus"]
    challenge = httpx.get(f"{router.url}/v2/")
    assert challenge.status_code == 401
    assert challenge.headers["X-Dockyard-Region"] == "westus"
    header = challenge.headers["WWW-Authenticate"]
    assert f'realm="{router.url}/oauth2/token"' in header
    assert f'service="{LOGIN_SERVER}"' in header
    issued = httpx.get(
        f"{router.url}/oauth2/token",
        params={"service": LOGIN_SERVER, "scope": "repository:guarded/app:pull"},
        auth=("dockyard", PASSWORD),
    )
    assert issued.status_code == 200 and issued.headers["X-Dockyard-Region"] == "westus"
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}

    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    creds = f"dockyard:{PASSWORD}"
    skopeo(
        "copy",
        *TLS_OFF,
        "--dest-creds",
        creds,
        "--preserve-digests",
        f"oci:{layout}:latest",
        f"docker://{router.host}/guarded/app:1",
    )
    east = guarded["eastus"]

    def in_east() -> bool:
        seen = httpx.head(
            f"{east.url}/v2/guarded/app/manifests/1",
            headers={**bearer, "Accept": images.OCI_MANIFEST},
        )
        return seen.status_code == 200

    eventually(in_east)  # westus's token is good at eastus already
    west.stop()
    try:
        eventually(lambda: router.healthy() == {"eastus"})
        # The token westus issued goes on working through the router, now at eastus.
        pulled = httpx.get(
            f"{router.url}/v2/guarded/app/manifests/1",
            headers={**bearer, "Accept": images.OCI_MANIFEST},
        )
        assert pulled.status_code == 200, pulled.text
        assert pulled.headers["X-Dockyard-Region"] == "eastus"
        assert pulled.content == image.manifest
        # A new client logs in and pulls through the router as if nothing happened.
        back = tmp_path / "back"
        skopeo(
            "copy",
            *TLS_OFF,
            "--src-creds",
            creds,
            f"docker://{router.host}/guarded/app:1",
            f"oci:{back}:back",
        )
        assert images.oci_layout_ref(back, "back")["digest"] == image.digest
        # The redirect of a blob GET carries its own short-lived right to that blob.
        layer = next(iter(image.blobs))
        redirected = httpx.get(f"{router.url}/v2/guarded/app/blobs/{layer}", headers=bearer)
        assert redirected.status_code == 307
        location = redirected.headers["Location"]
        assert httpx.get(location).content == image.blobs[layer]
        forged = location[:-4] + ("0000" if not location.endswith("0000") else "1111")
        assert httpx.get(forged).status_code == 401
        other = location.replace(layer, next(iter(set(image.blobs) - {layer})))
        assert httpx.get(other).status_code == 401
        assert httpx.get(f"{router.url}/v2/guarded/app/blobs/{layer}").status_code == 401
    finally:
        west.start()


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
