"""Two Dockyard nodes on one PostgreSQL database and one S3 bucket (a real SeaweedFS),
behind a real nginx that hands consecutive requests to alternate nodes: the scale-out
deployment, which must behave as one registry whichever node a request lands on.

Every test of `test_distribution_api.py`, `test_skopeo.py` and `test_oras.py` runs again
through nginx (the `registry` fixture here is the deployment); then upload sessions are
carried from node to node by hand, and a node is killed in the middle of a PATCH
(skopeo's copy through a node killed mid-push runs on the deployment of docs/deploy.md:
`test_deploy_guide.py`).
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer
from endpoint import RegistryEndpoint
from nginx import Nginx
from test_distribution_api import *  # noqa: F403  (the tests to run again)
from test_oras import *  # noqa: F403
from test_postgresql import db_upgrade
from test_skopeo import *  # noqa: F403

pytestmark = pytest.mark.timeout(120)

MiB = 1024 * 1024
OCTETS = {"Content-Type": "application/octet-stream"}


class TwoNodes(RegistryEndpoint):
    """Two `dockyard serve` nodes sharing a database, a bucket and the secret key, and
    the nginx in front of them, whose address (`url`, `host`) clients use and which
    both nodes name as their login server and trust as a proxy. The second node runs
    no background work (`--no-in-process-worker`), as a node beside a worker would."""

    def __init__(self, base: Path, database_url: str, storage_args: tuple[str, ...]) -> None:
        self.balancer = Nginx()
        shared = (
            "--no-auth", "--workers", "1", "--database-url", database_url, *storage_args,
            "--trusted-proxy", "127.0.0.1", "--login-server", self.balancer.host,
        )  # fmt: skip
        self.nodes = (
            RegistryServer(base / "node1", base / "node1.log", args=shared),
            RegistryServer(
                base / "node2", base / "node2.log", args=(*shared, "--no-in-process-worker")
            ),
        )

    @property
    def host(self) -> str:
        return self.balancer.host

    @property
    def url(self) -> str:
        return self.balancer.url

    def start(self) -> TwoNodes:
        first, second = self.nodes
        first.start()
        # The key that seals the token signing keys in the database: made by the first
        # node on its first start, needed by every other.
        second.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(first.data_dir / "secret.key", second.data_dir / "secret.key")
        second.start()
        self.balancer.start([node.host for node in self.nodes])
        return self

    def stop(self) -> None:
        self.balancer.stop()
        for node in self.nodes:
            node.stop()

    def request_log(self) -> list[dict]:
        """Both nodes' request logs, first node first."""
        return [entry for node in self.nodes for entry in node.request_log()]

    def stderr_tail(self, lines: int = 40) -> str:
        tails = [node.stderr_tail(lines) for node in self.nodes]
        return "\n".join([*tails, "--- nginx:", self.balancer.log_tail(lines)])

    def served_by(self) -> Counter[str]:
        """How many requests nginx handed to each node (a retried request counts for
        every node it tried; one nginx answered itself, such as skopeo's TLS probe, for
        none)."""
        return Counter(
            node
            for request in self.balancer.requests()
            for node in request.upstreams
            if node != "-"
        )


def deploy(postgres, seaweedfs, base: Path) -> TwoNodes:  # type: ignore[no-untyped-def]
    """A started deployment on a new database (upgraded first, as an operator must) and
    a new bucket."""
    url = postgres.create_database("twonodes")
    upgraded = db_upgrade(url)
    assert upgraded.returncode == 0, upgraded.stderr
    storage = seaweedfs.serve_args(seaweedfs.create_bucket("twonodes"))
    return TwoNodes(base, url, storage).start()


@pytest.fixture(scope="module")
def registry(postgres, seaweedfs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoNodes]:
    """One deployment for the module; the suites above use it as they use one server."""
    deployment = deploy(postgres, seaweedfs, tmp_path_factory.mktemp("two-nodes"))
    try:
        yield deployment
        # Requests went to both nodes, near evenly: the suites above cannot have passed
        # on one node alone.
        served = deployment.served_by()
        assert set(served) == {node.host for node in deployment.nodes}, served
        assert min(served.values()) > 0.4 * sum(served.values()), served
    finally:
        deployment.stop()
    for node in deployment.nodes:
        assert not (node.data_dir / "dockyard.db").exists(), "a node used SQLite"
        assert not (node.data_dir / "blobs").exists(), "a node stored blobs on disk"


@pytest.fixture
def doomed(postgres, seaweedfs, tmp_path: Path) -> Iterator[TwoNodes]:
    """A deployment of the test's own, for a test that kills one of its nodes."""
    deployment = deploy(postgres, seaweedfs, tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop()


def settled(deployment: TwoNodes, count: int) -> list:
    """nginx's access log once it holds `count` lines (each is written as its response
    ends, a moment after the client has it)."""
    deadline = time.monotonic() + 5
    while len(requests := deployment.balancer.requests()) < count:
        assert time.monotonic() < deadline, requests
        time.sleep(0.02)
    return requests


def sized_range(response: httpx.Response) -> int:
    """The upload's size from a `Range: 0-<last>` header."""
    return int(response.headers["Range"].split("-")[1]) + 1


# -- the load balancer ------------------------------------------------------------------


def test_consecutive_requests_alternate_between_nodes(registry: TwoNodes):
    before = len(registry.balancer.requests())
    with registry.client() as http:
        for _ in range(6):
            assert http.get("/v2/").status_code == 200
    served = [r.upstreams for r in settled(registry, before + 6)[before:]]
    assert all(len(tried) == 1 for tried in served), served
    assert {tried[0] for tried in served} == {node.host for node in registry.nodes}
    assert all(a != b for a, b in itertools.pairwise(served)), served


def test_nodes_see_the_client_address_nginx_forwards(registry: TwoNodes):
    """`--trusted-proxy 127.0.0.1`: a node believes the X-Forwarded-For nginx adds, so
    its request log names the client (here 127.0.0.2), not the proxy."""
    path = "/v2/forwarded/tags/list"
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=registry.url, transport=transport) as http:
        for _ in range(2):
            assert http.get(path).status_code == 404
    deadline = time.monotonic() + 5
    while len(entries := [e for e in registry.request_log() if e.get("path") == path]) < 2:
        assert time.monotonic() < deadline, entries
        time.sleep(0.05)
    assert [e.get("remote") for e in entries] == ["127.0.0.2", "127.0.0.2"], entries


def test_a_node_without_the_shared_secret_key_refuses_to_start(postgres, tmp_path: Path):
    """A node that made a secret key of its own cannot open the signing keys the first
    node sealed in the database: it says so in one line, naming the fix, and stops."""
    url = postgres.create_database("secretkey")
    upgraded = db_upgrade(url)
    assert upgraded.returncode == 0, upgraded.stderr
    args = ("--no-auth", "--workers", "1", "--database-url", url)
    first = RegistryServer(tmp_path / "node1", tmp_path / "node1.log", args=args).start()
    try:
        stranger = RegistryServer(tmp_path / "node2", tmp_path / "node2.log", args=args)
        with pytest.raises(RuntimeError, match="exited with 1") as refused:
            stranger.start()
    finally:
        first.stop()
    message = str(refused.value)
    assert "every node needs the same secret key" in message, message
    assert str(stranger.data_dir / "secret.key") in message, message
    assert "Traceback" not in message, message


# -- upload sessions across nodes -------------------------------------------------------


def test_chunked_upload_alternates_nodes_and_completes(registry: TwoNodes):
    """POST on node 1, PATCHes alternating nodes, PUT on node 1. The chunks cross the
    S3 store's 8 MiB part boundary on a node that did not write the part's start."""
    data = os.urandom(13 * MiB + 17)
    digest = images.sha256_digest(data)
    chunks = [data[: 5 * MiB], data[5 * MiB : 10 * MiB], data[10 * MiB : -1000]]
    with registry.nodes[0].client() as one, registry.nodes[1].client() as two:
        started = one.post("/v2/nodes/chunked/blobs/uploads/")
        assert started.status_code == 202, started.text
        location, offset = started.headers["Location"], 0
        for http, chunk in zip((two, one, two), chunks, strict=True):
            end = offset + len(chunk) - 1
            response = http.patch(
                location, content=chunk, headers={**OCTETS, "Content-Range": f"{offset}-{end}"}
            )
            assert response.status_code == 202, response.text
            assert response.headers["Range"] == f"0-{end}"
            location, offset = response.headers["Location"], end + 1
        assert sized_range(two.get(location)) == offset
        done = one.put(f"{location}?digest={digest}", content=data[offset:], headers=OCTETS)
        assert done.status_code == 201, done.text
        assert done.headers["Docker-Content-Digest"] == digest
        for http in (one, two):
            assert http.get(f"/v2/nodes/chunked/blobs/{digest}").content == data


def test_streamed_patches_alternate_nodes_and_complete(registry: TwoNodes):
    """Streamed PATCHes (no Content-Range, chunked transfer encoding), each on the
    other node, then a PUT with no body."""
    data = os.urandom(3 * MiB + 5)
    digest = images.sha256_digest(data)
    parts = [data[: 2 * MiB], data[2 * MiB :]]

    def stream(part: bytes) -> Iterator[bytes]:
        for i in range(0, len(part), 256 * 1024):
            yield part[i : i + 256 * 1024]

    with registry.nodes[0].client() as one, registry.nodes[1].client() as two:
        location = two.post("/v2/nodes/streamed/blobs/uploads/").headers["Location"]
        for http, part in zip((one, two), parts, strict=True):
            response = http.patch(location, content=stream(part))
            assert response.status_code == 202, response.text
            location = response.headers["Location"]
        assert sized_range(response) == len(data)
        done = one.put(f"{location}?digest={digest}")
        assert done.status_code == 201, done.text
        assert two.get(f"/v2/nodes/streamed/blobs/{digest}").content == data


# -- a node killed mid-push -------------------------------------------------------------


@pytest.mark.slow
def test_upload_killed_mid_patch_continues_on_the_other_node(doomed: TwoNodes):
    """The client's own retry: node 1 is SIGKILLed while a streamed PATCH is arriving;
    the client asks node 2 how much of the session the registry has (GET on the same
    Location), sends the rest there from that offset, and finishes there."""
    first, second = doomed.nodes
    data = os.urandom(10 * MiB)
    digest = images.sha256_digest(data)
    with first.client() as one, second.client() as two:
        location = one.post("/v2/nodes/killed/blobs/uploads/").headers["Location"]
        acked = one.patch(
            location,
            content=data[: 2 * MiB],
            headers={**OCTETS, "Content-Range": f"0-{2 * MiB - 1}"},
        )
        assert acked.status_code == 202, acked.text
        location = acked.headers["Location"]

        def stream() -> Iterator[bytes]:
            for i in range(2 * MiB, len(data), MiB):
                if i == 5 * MiB:
                    first.kill()
                yield data[i : i + MiB]

        with pytest.raises(httpx.TransportError):
            one.patch(location, content=stream())
        assert not first.running

        kept = sized_range(two.get(location))
        assert 2 * MiB <= kept <= 5 * MiB, kept
        rest = two.patch(
            location,
            content=data[kept:],
            headers={**OCTETS, "Content-Range": f"{kept}-{len(data) - 1}"},
        )
        assert rest.status_code == 202, rest.text
        done = two.put(f"{rest.headers['Location']}?digest={digest}")
        assert done.status_code == 201, done.text
    with doomed.client() as http:  # nginx: node 1 refuses, node 2 answers
        assert http.get(f"/v2/nodes/killed/blobs/{digest}").content == data
