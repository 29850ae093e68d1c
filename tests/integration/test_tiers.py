"""Tiers, quotas and rate limits on a real server: a tier or quota changed with the CLI
(over the management API) while the server runs applies to the next push; a push over
quota is refused with DENIED and a message that says why and what to do (raw HTTP and
skopeo), storage use unchanged; concurrent uploads race the quota; `show-usage`; and 429
with Retry-After when a tiny rate limit is configured."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer, run_cli

TLS_OFF = ("--dest-tls-verify=false",)


def size_used(server: RegistryServer) -> int:
    usage = json.loads(server.manage("show-usage", "-n", "dockyard", "-o", "json"))["value"]
    return next(line["currentValue"] for line in usage if line["name"] == "Size")


def start_upload(http: httpx.Client, repo: str) -> str:
    started = http.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    return started.headers["Location"]


def test_a_push_over_quota_is_refused_and_changes_nothing(
    fresh_registry: RegistryServer, skopeo, tmp_path: Path
) -> None:
    server = fresh_registry
    server.push_blob("app", b"a" * 4000)
    assert size_used(server) == 4000
    # Room for 200 bytes: less than any blob of the image skopeo pushes below.
    server.manage("registry", "update", "-n", "dockyard", "--storage-quota", "4200")
    usage = json.loads(server.manage("show-usage", "-n", "dockyard", "-o", "json"))["value"]
    assert usage[0] == {"name": "Size", "limit": 4200, "currentValue": 4000, "unit": "Bytes"}

    data = b"b" * 2000
    with server.client() as http:
        refused = http.post(
            f"/v2/app/blobs/uploads/?digest={images.sha256_digest(data)}", content=data
        )
        assert refused.status_code == 403
        error = refused.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert error["message"].startswith(
            "storage quota of registry dockyard exceeded: 3.9 KiB of 4.1 KiB (its own quota) "
            "used, and this push needs 2.0 KiB more"
        )
        assert "dockyard registry update -n dockyard --sku Premium" in error["message"]
        # A chunk of unknown length (chunked transfer) is stopped once it crosses.
        location = start_upload(http, "app")
        chunks = (part for part in [b"c" * 1000, b"c" * 1000])
        streamed = http.patch(location, content=chunks)
        assert streamed.status_code == 403, streamed.text
        assert http.get(location).status_code == 404  # the session went with its data
    assert size_used(server) == 4000
    assert not any((server.data_dir / "blobs").rglob("uploads/*"))

    layout = images.write_oci_layout(tmp_path / "layout", {"latest": images.busybox_image()})
    copied = skopeo(
        "copy", *TLS_OFF, f"oci:{layout}:latest", f"docker://{server.host}/busybox:1", check=False
    )
    assert copied.returncode != 0
    assert "storage quota of registry dockyard exceeded" in copied.stderr
    assert size_used(server) == 4000

    server.manage("registry", "update", "-n", "dockyard", "--storage-quota", "tier")  # at once
    skopeo("copy", *TLS_OFF, f"oci:{layout}:latest", f"docker://{server.host}/busybox:1")
    assert size_used(server) > 4000


def test_concurrent_uploads_cannot_together_pass_the_quota(
    fresh_registry: RegistryServer,
) -> None:
    server = fresh_registry
    server.manage(
        "registry", "update", "-n", "dockyard", "--sku", "Basic", "--storage-quota", "100KiB"
    )
    blobs = [bytes([n]) * (60 << 10) for n in range(4)]
    with server.client() as http:
        locations = [start_upload(http, "race") for _ in blobs]

    def finish(location: str, data: bytes) -> int:
        digest = images.sha256_digest(data)
        with server.client() as client:
            return client.put(location, params={"digest": digest}, content=data).status_code

    with ThreadPoolExecutor(len(blobs)) as pool:
        statuses = sorted(pool.map(finish, locations, blobs))
    assert statuses == [201, 403, 403, 403]
    assert size_used(server) == 60 << 10


def test_show_usage_and_a_refused_downgrade(fresh_registry: RegistryServer) -> None:
    server = fresh_registry
    server.manage("network-rule", "add", "-n", "dockyard", "--ip-address", "127.0.0.1")
    table = server.manage("show-usage", "-n", "dockyard")
    assert "registry dockyard: sku Premium" in table
    for line in ("Size", "Webhooks", "Geo-replications", "IPRules", "ScopeMaps", "Tokens"):
        assert line in table
    usage = {
        line["name"]: line
        for line in json.loads(server.manage("show-usage", "-n", "dockyard", "-o", "json"))["value"]
    }
    assert usage["IPRules"] == {"currentValue": 1, "limit": 200, "name": "IPRules", "unit": "Count"}

    command = ["registry", "update", "-n", "dockyard", "--sku", "Standard"]
    refused = run_cli(*command, "--server", server.host, "--insecure")
    assert refused.returncode == 1
    assert refused.stdout.startswith("error: ") and len(refused.stdout.strip().splitlines()) == 1
    assert (
        "registry dockyard cannot move to Standard: it has 1 IPRules and Standard allows 0"
        in refused.stdout
    )
    assert "Traceback" not in refused.stdout + refused.stderr


@pytest.fixture
def limited_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(
        tmp_path / "data",
        tmp_path / "dockyard.log",
        env={
            "DOCKYARD_RATE_LIMITS__ENABLED": "true",
            "DOCKYARD_RATE_LIMITS__PER_MINUTE": '{"DataplaneRead": 3}',
        },
    ).start() as server:
        yield server


def test_requests_past_a_rate_limit_get_429_with_retry_after(
    limited_registry: RegistryServer,
) -> None:
    with limited_registry.client() as http:
        statuses = [http.get("/v2/").status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = http.get("/v2/app/tags/list")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 20
        assert refused.json()["errors"][0]["code"] == "TOOMANYREQUESTS"
        assert http.head("/v2/").status_code == 429
        assert http.get("/healthz").status_code == 200  # never limited
        writes = http.post("/v2/app/blobs/uploads/")  # writes have a bucket of their own
        assert writes.status_code == 202
