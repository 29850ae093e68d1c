"""Restarts and crashes (SIGKILL) of a real server keep what was pushed, and only that; a
stop signal ends the server whenever it comes."""

from __future__ import annotations

import signal
import time

import images
import pytest
from conftest import RegistryServer, port_is_open

pytestmark = pytest.mark.timeout(120)


def check_image(server, repo: str, tag: str, image: images.Image) -> None:
    with server.client() as http:
        got = http.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": image.media_type})
        assert got.status_code == 200, got.text
        assert got.content == image.manifest
        assert got.headers["Docker-Content-Digest"] == image.digest
        for digest, data in image.blobs.items():
            blob = http.get(f"/v2/{repo}/blobs/{digest}")
            assert blob.status_code == 200, (digest, blob.status_code)
            assert blob.content == data


@pytest.mark.parametrize("crash", [False, True], ids=["stop", "sigkill"])
def test_pushed_image_survives_restart(fresh_registry, crash):
    image = images.busybox_image()
    fresh_registry.push_image("restart/busybox", image, "v1")
    old_pid = fresh_registry.proc.pid

    fresh_registry.restart(crash=crash)

    assert fresh_registry.proc.pid != old_pid
    check_image(fresh_registry, "restart/busybox", "v1", image)
    with fresh_registry.client() as http:
        tags = http.get("/v2/restart/busybox/tags/list")
        assert tags.json() == {"name": "restart/busybox", "tags": ["v1"]}


def test_upload_cut_by_a_crash_never_becomes_a_blob(fresh_registry):
    image = images.busybox_image()
    layer = image.layers[0]
    layer_digest = images.sha256_digest(layer)
    repo = "restart/half"
    with fresh_registry.client() as http:
        start = http.post(f"/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        half = len(layer) // 2
        patched = http.patch(
            start.headers["Location"],
            content=layer[:half],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"0-{half - 1}",
            },
        )
        assert patched.status_code == 202, patched.text

    fresh_registry.kill()
    fresh_registry.start()

    with fresh_registry.client() as http:
        assert http.head(f"/v2/{repo}/blobs/{layer_digest}").status_code == 404
        fresh_registry.push_blob(repo, image.config)
        refused = http.put(
            f"/v2/{repo}/manifests/v1",
            content=image.manifest,
            headers={"Content-Type": image.media_type},
        )
        assert refused.status_code == 400, refused.text
        assert [e["code"] for e in refused.json()["errors"]] == ["MANIFEST_BLOB_UNKNOWN"]

    # The whole image can still be pushed afterwards.
    fresh_registry.push_image(repo, image, "v1")
    check_image(fresh_registry, repo, "v1", image)


def test_sigterm_while_the_workers_start_ends_the_server(tmp_path):
    """The main process binds the port before its workers have built their apps: a SIGTERM
    then (a deploy that stops what it just started) ends the server, workers included,
    instead of leaving a worker serving while the main process waits for it."""
    server = RegistryServer(tmp_path / "data", tmp_path / "dockyard.log", args=("--workers", "2"))
    with server.launch():
        deadline = time.monotonic() + 20
        while not port_is_open(server.port):
            assert time.monotonic() < deadline, server.stderr_tail()
            time.sleep(0.01)
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(10)
        deadline = time.monotonic() + 5
        while port_is_open(server.port):
            assert time.monotonic() < deadline, "a worker still serves after its main process ended"
            time.sleep(0.05)
