"""PostgreSQL goes away under a running server and comes back: meanwhile requests fail
with 503 and the protocol's error body (UNAVAILABLE, saying what is wrong), and the
server recovers on its own when the database returns, with every acknowledged push
still there, and its background work listens for outbox announcements again. Its own
PostgreSQL, so that stopping it disturbs no other test."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import images
import pytest
from conftest import RegistryServer, run_cli
from postgres import PostgresServer


@pytest.fixture
def outage_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def _assert_unavailable(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 503, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "UNAVAILABLE"
    assert "database" in error["message"].lower()
    assert "Traceback" not in response.text


@pytest.mark.slow
def test_requests_fail_with_503_while_postgresql_is_down_and_recover(
    outage_postgres: PostgresServer, tmp_path: Path
) -> None:
    url = outage_postgres.create_database("outage")
    upgraded = run_cli("db", "upgrade", "--database-url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    server = RegistryServer(
        tmp_path / "data", tmp_path / "dockyard.log", args=("--no-auth", "--database-url", url)
    ).start()
    try:
        image = images.busybox_image()
        before = server.push_image("outage/app", image, "v1")
        accept = {"Accept": image.media_type}
        with server.client() as http:
            assert http.get("/v2/outage/app/manifests/v1", headers=accept).status_code == 200

            outage_postgres.pause()
            # Several of each, so that every server worker process and thread meets it.
            for _ in range(4):
                _assert_unavailable(http.get("/v2/outage/app/manifests/v1", headers=accept))
                _assert_unavailable(http.get("/v2/_catalog"))
                _assert_unavailable(http.post("/v2/outage/app/blobs/uploads/"))
            head = http.head("/v2/outage/app/manifests/v1", headers=accept)
            assert head.status_code == 503 and head.content == b""

            outage_postgres.resume()
            deadline = time.monotonic() + 20
            while True:
                answer = http.get("/v2/outage/app/manifests/v1", headers=accept)
                if answer.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert answer.status_code == 200, answer.text
            assert answer.headers["Docker-Content-Digest"] == before
        # Every process answers again, reads and writes alike, including those that
        # met no request during the outage (a new client connection each time).
        for _ in range(8):
            with server.client() as fresh:
                assert fresh.get("/v2/outage/app/manifests/v1", headers=accept).status_code == 200
            with server.client() as fresh:
                assert fresh.post("/v2/outage/app/blobs/uploads/").status_code == 202
        after = server.push_image("outage/app", images.busybox_image(), "v2")
        with server.client() as http:
            tags = http.get("/v2/outage/app/tags/list").json()["tags"]
            assert sorted(tags) == ["v1", "v2"]
            assert http.get(f"/v2/outage/app/manifests/{after}", headers=accept).status_code == 200
        # Each process's background work lost its listening connection once, and listens
        # again (once at its start, once after the outage).
        log = server.log_path
        deadline = time.monotonic() + 20
        while True:
            text = log.read_text()
            lost = text.count("outbox notifications lost")
            listening = text.count("listening for outbox announcements")
            if (lost and listening == 2 * lost) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert lost and listening == 2 * lost, text[-4000:]
    finally:
        server.stop()
