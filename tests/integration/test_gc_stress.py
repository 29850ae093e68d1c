"""Garbage collection under load, against a real server (SQLite and files).

For a bounded time, threads push images (raw HTTP: blobs shared between repositories,
cross-repository mounts, retries when a collection took a blob before its manifest came),
delete manifests and whole repositories, while garbage is collected with no grace period
by the server's own background worker every second and by `dockyard gc --grace 0` runs
beside it. Then every image that should exist pulls byte-identical with skopeo, and no
blob, link or upload that nothing needs is left in the database or in storage."""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer

PUSH_SECONDS = 20
PUSHERS = 3
SHARED_LAYERS = [hashlib.sha256(b"shared %d" % n).digest() * 512 for n in range(6)]
TLS_OFF = ("--src-tls-verify=false",)


@pytest.fixture
def collected_server(tmp_path: Path):
    server = RegistryServer(
        tmp_path / "data",
        tmp_path / "dockyard.log",
        args=("--no-auth", "--workers", "2", "--gc-interval", "1", "--gc-grace", "0"),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Pusher(threading.Thread):
    """Pushes images into repositories of its own, and deletes some of them again; keeps
    `expected` ((repo, tag) -> image) exact, since nobody else changes its repositories."""

    def __init__(self, server: RegistryServer, number: int, deadline: float) -> None:
        super().__init__(name=f"pusher-{number}")
        self.server, self.number, self.deadline = server, number, deadline
        self.random = random.Random(number)
        self.expected: dict[tuple[str, str], images.Image] = {}
        self.retries = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.server.client() as http:
                pushed = 0
                while time.monotonic() < self.deadline:
                    self.push(http, f"stress/p{self.number}/r{pushed % 3}", f"t{pushed}")
                    pushed += 1
                    self.delete_some(http)
        except BaseException as error:  # reported by the test, with the server's log
            self.error = error

    def push(self, http: httpx.Client, repo: str, tag: str) -> None:
        config = json.dumps({"os": "linux", "pusher": self.number, "tag": tag}).encode()
        layers = (
            *self.random.sample(SHARED_LAYERS, 2),
            hashlib.sha256(f"{repo}:{tag}".encode()).digest() * 256,
        )
        image = images.Image(
            manifest=images.json_bytes(
                {
                    "schemaVersion": 2,
                    "mediaType": images.OCI_MANIFEST,
                    "config": images.descriptor(images.OCI_CONFIG, config),
                    "layers": [images.descriptor(images.OCI_LAYER_GZIP, la) for la in layers],
                }
            ),
            media_type=images.OCI_MANIFEST,
            config=config,
            layers=layers,
            platform={},
        )
        for _ in range(20):
            for data in image.blobs.values():
                self.mount_or_upload(http, repo, data)
            response = http.put(
                f"/v2/{repo}/manifests/{tag}",
                content=image.manifest,
                headers={"Content-Type": image.media_type},
            )
            if response.status_code == 201:
                self.expected[repo, tag] = image
                return
            # With no grace period a collection may take a blob between its upload and
            # the manifest: the only refusal allowed, and the client pushes again.
            assert response.status_code == 400, response.text
            assert response.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"
            self.retries += 1
        raise AssertionError(f"{repo}:{tag} never got pushed")

    def mount_or_upload(self, http: httpx.Client, repo: str, data: bytes) -> None:
        digest = images.sha256_digest(data)
        source = f"stress/p{self.random.randrange(PUSHERS)}/r{self.random.randrange(3)}"
        start = http.post(f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
        if start.status_code == 201:
            return
        assert start.status_code == 202, start.text
        done = http.put(
            start.headers["Location"],
            params={"digest": digest},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text

    def delete_some(self, http: httpx.Client) -> None:
        roll = self.random.random()
        if roll < 0.3 and self.expected:
            repo, tag = self.random.choice(sorted(self.expected))
            image = self.expected.pop((repo, tag))
            response = http.delete(f"/v2/{repo}/manifests/{image.digest}")
            assert response.status_code == 202, response.text
        elif roll < 0.36 and self.expected:
            repo = self.random.choice(sorted({repo for repo, _ in self.expected}))
            for key in [key for key in self.expected if key[0] == repo]:
                del self.expected[key]
            response = http.delete(f"/acr/v1/{repo}")
            assert response.status_code == 202, response.text


def collect_offline(
    server: RegistryServer, deadline: float, reports: list[dict], errors: list[BaseException]
) -> None:
    """`dockyard gc --grace 0` runs, one after another, beside the server's own."""
    try:
        while time.monotonic() < deadline:
            reports.append(json.loads(server.admin("gc", "--grace", "0", "-o", "json")))
    except BaseException as error:  # reported by the test
        errors.append(error)


def database_leftovers(database: Path) -> dict[str, list]:
    """What nothing needs but is still recorded."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return {
            "unreferenced links": db.execute(
                "SELECT l.repository_id, l.digest FROM blob_links l WHERE NOT EXISTS ("
                " SELECT 1 FROM manifest_references r JOIN manifests m ON m.id = r.manifest_id"
                " WHERE m.repository_id = l.repository_id AND r.digest = l.digest)"
            ).fetchall(),
            "unlinked blobs": db.execute(
                "SELECT digest FROM blobs b WHERE NOT EXISTS ("
                " SELECT 1 FROM blob_links l WHERE l.digest = b.digest)"
            ).fetchall(),
            "uploads": db.execute("SELECT id FROM uploads").fetchall(),
        }


@pytest.mark.slow
def test_pushes_deletes_and_collections_at_once_lose_nothing_and_leave_nothing(
    collected_server: RegistryServer, skopeo, tmp_path: Path
) -> None:
    server = collected_server
    deadline = time.monotonic() + PUSH_SECONDS
    pushers = [Pusher(server, number, deadline) for number in range(PUSHERS)]
    reports: list[dict] = []
    errors: list[BaseException] = []
    offline = threading.Thread(target=collect_offline, args=(server, deadline, reports, errors))
    for thread in (*pushers, offline):
        thread.start()
    for thread in (*pushers, offline):
        thread.join(timeout=PUSH_SECONDS + 60)
    errors += [pusher.error for pusher in pushers if pusher.error is not None]
    if errors:
        raise errors[0]
    assert reports and sum(report["blobs"] for report in reports) > 0, reports
    expected = {key: image for pusher in pushers for key, image in pusher.expected.items()}
    assert len(expected) >= 10, "too little was pushed to mean anything"

    # Everything that should exist pulls byte-identical, with one skopeo per repository.
    for repo in sorted({repo for repo, _ in expected}):
        target = tmp_path / "pulled" / repo
        skopeo(
            "sync", *TLS_OFF, "--preserve-digests", "--src", "docker", "--dest", "dir",
            f"{server.host}/{repo}", str(target),
        )  # fmt: skip
        for (image_repo, tag), image in expected.items():
            if image_repo == repo:
                manifest, blobs = images.read_dir_layout(
                    target / f"{repo.rsplit('/', 1)[-1]}:{tag}"
                )
                assert manifest == image.manifest, (repo, tag)
                assert blobs == image.blobs, (repo, tag)

    # One more collection, once nothing runs: nothing unreferenced is left, anywhere.
    server.admin("gc", "--grace", "0")
    assert database_leftovers(server.data_dir / "dockyard.db") == {
        "unreferenced links": [],
        "unlinked blobs": [],
        "uploads": [],
    }
    with sqlite3.connect(f"file:{server.data_dir / 'dockyard.db'}?mode=ro", uri=True) as db:
        recorded = {row[0] for row in db.execute("SELECT digest FROM blobs")}
    store = server.data_dir / "blobs" / "dockyard"
    files = {"sha256:" + path.name for path in (store / "blobs").rglob("*") if path.is_file()}
    assert files == recorded
    assert recorded == {digest for image in expected.values() for digest in image.blobs}
    assert list((store / "uploads").iterdir()) == []
