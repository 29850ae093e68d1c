"""Restarts and crashes (SIGKILL) of a real server keep what was pushed, and only that;
a stop signal ends the server whenever it comes, and a main process killed alone takes
its workers with it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

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


def test_pushed_image_survives_restart(fresh_registry):
    image = images.busybox_image()
    fresh_registry.push_image("restart/busybox", image, "v1")
    old_pid = fresh_registry.proc.pid

    fresh_registry.restart()

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
    server = RegistryServer(
        tmp_path / "data",
        tmp_path / "dockyard.log",
        args=("--workers", "2"),
        env={"DOCKYARD_SERVER__STOP_TIMEOUT_SECONDS": "3"},  # one may miss the SIGTERM
    )
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


def children(pid: int) -> set[int]:
    """The processes `pid` started (Linux keeps each thread's in /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def running(pid: int) -> bool:
    """Still running: neither gone nor a zombie waiting for PID 1 to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_workers_end_with_a_killed_main_process(tmp_path: Path):
    """An OOM kill of `dockyard serve`'s main process alone (SIGKILL, not its group):
    its granian workers end too, the port goes quiet, and a server started again on
    the same port serves alone, not beside a generation of orphans, with what was
    pushed before."""
    server = RegistryServer(
        tmp_path / "data", tmp_path / "dockyard.log", args=("--no-auth", "--workers", "2")
    )
    server.start()
    assert server.proc is not None
    killed, workers = server.proc.pid, set[int]()
    try:
        image = images.busybox_image()
        server.push_image("restart/killed", image, "v1")
        deadline = time.monotonic() + 10
        while len(workers := children(killed)) < 2:
            assert time.monotonic() < deadline, workers
            time.sleep(0.05)
        os.kill(killed, signal.SIGKILL)
        server.proc.wait()
        deadline = time.monotonic() + 10
        while port_is_open(server.port) or any(running(pid) for pid in workers):
            assert time.monotonic() < deadline, (
                f"workers still running: {[p for p in workers if running(p)]}\n"
                + server.stderr_tail()
            )
            time.sleep(0.05)

        port = server.port
        server.start()
        assert server.port == port
        check_image(server, "restart/killed", "v1", image)
        assert not any(running(pid) for pid in workers)
    finally:
        server.stop()
        # A failed test's orphans, through the killed server's process group (its id is
        # not reused while a member lives).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(killed, signal.SIGKILL)
