"""The audit log and /metrics against a real server (two worker processes): a scripted
session (skopeo push and pull, a refused pull, a tag delete, a manifest delete, failed
and successful logins) leaves an entry for every operation that `dockyard logs query`
finds, with the right columns; /metrics, parsed with prometheus-client's parser, shows
the request counters of both processes, storage used and the outbox's backlog."""

from __future__ import annotations

import base64
import json
import socket
import time

import httpx
import images
import pytest
from conftest import RegistryServer
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(120)

ADMIN_PASSWORD = "audit-secret-for-tests"
CREDS = f"dockyard:{ADMIN_PASSWORD}"
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("audit")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=("--workers", "2"),
        env={
            "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DOCKYARD_AUDIT__FLUSH_SECONDS": "0.2",
            "DOCKYARD_OUTBOX__POLL_SECONDS": "0.2",
            "DOCKYARD_METRICS__TOKEN": "scrape-me",
        },
    ).start() as started:
        yield started


def basic() -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(CREDS.encode()).decode()}


def query(server: RegistryServer, *args: str) -> list[dict]:
    output = server.manage("logs", "query", "-r", "dockyard", *args)
    return [json.loads(line) for line in output.splitlines()]


def eventually(server: RegistryServer, wanted, *args: str) -> list[dict]:
    """The rows of `logs query ARGS -o jsonl` once `wanted(rows)` holds: rows reach the
    database a flush or an outbox poll after the requests."""
    deadline = time.monotonic() + 30
    while True:
        rows = query(server, *args, "-o", "jsonl")
        if wanted(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_scripted_session_leaves_an_entry_for_every_operation(server, skopeo, tmp_path):
    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    repo = f"{server.host}/audit/busybox"
    skopeo("copy", *TLS_OFF, "--dest-creds", CREDS, f"oci:{layout}:latest", f"docker://{repo}:1")
    skopeo("copy", *TLS_OFF, "--dest-creds", CREDS, f"oci:{layout}:latest", f"docker://{repo}:2")
    skopeo("copy", *TLS_OFF, "--src-creds", CREDS, f"docker://{repo}:1", f"oci:{tmp_path}/back:1")
    refused = skopeo(
        "inspect",
        "--tls-verify=false",
        "--creds",
        "dockyard:nope",
        f"docker://{repo}:1",
        check=False,
    )
    assert refused.returncode != 0
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/v2/audit/busybox/manifests/1").status_code == 401
        untag = http.delete("/acr/v1/audit/busybox/_tags/2", headers=basic())
        assert untag.status_code == 202, untag.text
        gone = http.delete(f"/v2/audit/busybox/manifests/{image.digest}", headers=basic())
        assert gone.status_code == 202, gone.text

    def complete(rows: list[dict]) -> bool:
        seen = {(r["OperationName"], r["ResultType"]) for r in rows}
        return {("Push", "201"), ("Pull", "200"), ("Pull", "401"), ("Untag", "202")} | {
            ("Delete", "202")
        } <= seen

    rows = eventually(server, complete, "--repository", "audit/busybox")
    assert complete(rows), rows
    by_operation = {(r["OperationName"], r["ResultType"], r["Tag"]): r for r in rows}
    pushed = by_operation["Push", "201", "1"]
    assert pushed["Digest"] == image.digest
    assert pushed["Identity"] and pushed["CallerIpAddress"] == "127.0.0.1"
    assert "skopeo" in pushed["UserAgent"].lower() or "containers" in pushed["UserAgent"]
    assert pushed["LoginServer"] == server.host and pushed["CorrelationId"]
    assert pushed["Category"] == "ContainerRegistryRepositoryEvents"
    assert pushed["MediaType"] == image.media_type and pushed["Size"] == len(image.manifest)
    pulled = by_operation["Pull", "200", "1"]
    assert pulled["Digest"] == image.digest and pulled["Size"] == len(image.manifest)
    assert pulled["Identity"] == pushed["Identity"] and pulled["DurationMs"] is not None
    anonymous = by_operation["Pull", "401", "1"]
    assert anonymous["Identity"] == "anonymous" and anonymous["ResultDescription"] == "Unauthorized"
    assert by_operation["Untag", "202", "2"]["Identity"] == "dockyard"  # Basic: the admin user
    deleted = by_operation["Delete", "202", None]
    assert deleted["Digest"] == image.digest and deleted["Identity"] == "dockyard"

    # The filters, and the other output forms.
    failures = json.loads(
        server.manage(
            "logs",
            "query",
            "-r",
            "dockyard",
            "--operation",
            "pull",
            "--result",
            "failure",
            "-o",
            "json",
        )
    )
    assert [(r["Repository"], r["ResultType"]) for r in failures] == [("audit/busybox", "401")]
    assert query(server, "--identity", "nobody-at-all", "-o", "jsonl") == []
    assert query(server, "--since", "1h", "--until", "59m", "-o", "jsonl") == []
    table = server.manage(
        "logs", "query", "-r", "dockyard", "--repository", "audit/busybox", "--operation", "Untag"
    )
    assert "Untag" in table and "audit/busybox" in table

    logins = query(server, "--kind", "login", "-o", "jsonl")
    results = {(r["Identity"], r["ResultType"]) for r in logins}
    assert {("dockyard", "200"), ("dockyard", "401")} <= results
    failed = next(r for r in logins if r["ResultType"] == "401")
    assert failed["CallerIpAddress"] == "127.0.0.1" and failed["LoginServer"] == server.host
    assert failed["OperationName"] == "Login" and failed["CorrelationId"]


def scrape(server: RegistryServer) -> dict[tuple[str, tuple], float]:
    scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer scrape-me"})
    assert scraped.status_code == 200, scraped.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scraped.text)
        for sample in family.samples
    }


def total(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, found), v in samples.items() if n == name and wanted <= set(found))


def test_metrics_show_requests_storage_and_the_outbox_backlog(server):
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    before = scrape(server)
    port = closed_port()
    server.manage(
        "webhook",
        "create",
        "--name",
        "deadhook",
        "-r",
        "dockyard",
        "--uri",
        f"http://127.0.0.1:{port}/",
        "--actions",
        "push",
    )
    image = images.busybox_image("arm64")
    pulls = 6
    with httpx.Client(base_url=server.url, headers=basic()) as http:
        for blob in image.blobs.values():
            digest = images.sha256_digest(blob)
            done = http.post(f"/v2/metrics/app/blobs/uploads/?digest={digest}", content=blob)
            assert done.status_code == 201, done.text
        headers = {"Content-Type": image.media_type}
        put = http.put("/v2/metrics/app/manifests/v1", content=image.manifest, headers=headers)
        assert put.status_code == 201, put.text
    for _ in range(pulls):  # a connection each: the two workers share them
        pulled = httpx.get(f"{server.url}/v2/metrics/app/manifests/v1", headers=basic())
        assert pulled.status_code == 200

    def failing(samples: dict) -> float:
        return total(samples, "dockyard_webhook_failing_events", webhook="deadhook")

    def moved(name: str, **labels: str) -> float:
        return total(samples, name, **labels) - total(before, name, **labels)

    manifest = {"operation": "distribution.manifest"}

    def counted() -> bool:
        requests = "dockyard_http_requests_total"
        return (
            moved(requests, **manifest, method="GET", status="200") >= pulls
            and moved(requests, **manifest, method="PUT", status="201") >= 1
        )

    # Each worker publishes its request figures every [audit] flush_seconds.
    deadline = time.monotonic() + 30
    samples = scrape(server)
    while (failing(samples) < 1 or not counted()) and time.monotonic() < deadline:
        time.sleep(0.3)
        samples = scrape(server)
    assert failing(samples) >= 1
    assert total(samples, "dockyard_outbox_backlog_events") >= 1
    assert total(samples, "dockyard_outbox_failing_events") >= 1
    assert moved("dockyard_http_requests_total", **manifest, method="GET", status="200") >= pulls
    assert moved("dockyard_http_requests_total", **manifest, method="PUT", status="201") == 1
    assert moved("dockyard_http_request_duration_seconds_count", **manifest) >= pulls + 1
    assert moved("dockyard_http_response_bytes_total", **manifest) >= pulls * len(image.manifest)
    received = sum(len(blob) for blob in image.blobs.values())
    assert moved("dockyard_http_request_bytes_total", operation="distribution.start_upload") >= (
        received
    )
    used = total(samples, "dockyard_storage_used_bytes", registry="dockyard")
    assert used >= received
