"""The image lifecycle against a real `dockyard serve` whose background worker runs every
second: the retention policy deletes exactly the untagged manifests and garbage
collection then frees their blobs; purge's dry run lists exactly what the real run
deletes; soft-deleted images are listed and restored byte-identical, even after a
garbage collection with no grace."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import images
import pytest
from conftest import RegistryServer

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(
        tmp_path / "data",
        tmp_path / "dockyard.log",
        env={"DOCKYARD_LIFECYCLE__INTERVAL_SECONDS": "1"},
    ).start() as server:
        yield server


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the background worker did not get there"
        time.sleep(0.2)


def status(server: RegistryServer, path: str) -> int:
    with server.client() as http:
        return http.get(path).status_code


def test_retention_deletes_exactly_the_untagged_manifests_and_gc_frees_their_blobs(
    server: RegistryServer,
) -> None:
    shown = server.manage(
        "config",
        "retention",
        "update",
        "-r",
        "dockyard",
        "--status",
        "enabled",
        "--days",
        "0",
        "--type",
        "UntaggedManifests",
    )
    assert '"status": "enabled"' in shown and '"days": 0' in shown
    old, new, other = (images.busybox_image(arch) for arch in ("amd64", "arm64", "ppc64le"))
    server.push_image("app", old, "v1")
    server.push_image("app", new, "v1")  # moves v1: `old` is untagged now
    server.push_image("app", other, "stays")
    server.push_image("gone", old, "v1")
    with server.client() as http:
        assert http.delete("/acr/v1/gone/_tags/v1").status_code == 202

    eventually(lambda: status(server, "/acr/v1/gone") == 404)  # went with its last manifest
    eventually(lambda: status(server, f"/v2/app/manifests/{old.digest}") == 404)
    assert status(server, f"/v2/app/manifests/{new.digest}") == 200
    assert status(server, "/v2/app/manifests/stays") == 200
    old_config = images.sha256_digest(old.config)
    assert status(server, f"/v2/app/blobs/{old_config}") == 200  # until collected

    server.admin("gc", "--grace", "0")
    assert status(server, f"/v2/app/blobs/{old_config}") == 404
    for image in (new, other):
        for digest in image.blobs:
            assert status(server, f"/v2/app/blobs/{digest}") == 200
    assert '"status": "enabled"' in server.manage("config", "retention", "show", "-r", "dockyard")


def test_purge_dry_run_lists_exactly_what_the_real_run_deletes(server: RegistryServer) -> None:
    amd, arm, s390x = (images.busybox_image(arch) for arch in ("amd64", "arm64", "s390x"))
    server.push_image("web", amd, "1.0")
    server.push_image("web", arm, "1.1")
    server.push_image("web", s390x, "latest")
    server.push_image("web/cache", amd, "1.0")
    with server.client() as http:
        assert http.patch("/acr/v1/web/_tags/1.1", json={"deleteEnabled": False}).status_code == 200
    purge = (
        "purge",
        "--filter",
        "web:1\\..*",
        "--filter",
        ".*/cache:.*",
        "--ago",
        "0",
        "--untagged",
        "-o",
        "json",
    )
    time.sleep(1.1)  # --ago 0: what was updated before now
    dry = json.loads(server.admin(*purge, "--dry-run"))
    real = json.loads(server.admin(*purge))
    assert dry["dryRun"] and not real["dryRun"]
    assert dry["deleted"] == real["deleted"] and dry["locked"] == real["locked"]
    assert [(i["repository"], i.get("tag"), i["digest"]) for i in real["deleted"]] == [
        ("web", "1.0", amd.digest),
        ("web", None, amd.digest),
        ("web/cache", "1.0", amd.digest),
        ("web/cache", None, amd.digest),
    ]
    assert [(i.get("tag"), i["digest"]) for i in real["locked"]] == [("1.1", arm.digest)]
    assert status(server, f"/v2/web/manifests/{amd.digest}") == 404
    assert status(server, "/v2/web/manifests/1.1") == 200
    assert status(server, "/acr/v1/web%2Fcache") == 404
    table = server.admin("purge", "--filter", "web:.*", "--ago", "1d", "--dry-run")
    assert "would delete 0 tags and 0 manifests" in table

    server.admin(
        "purge-schedule",
        "add",
        "nightly",
        "--cron",
        "0 1 * * *",
        "--filter",
        "web:.*",
        "--ago",
        "30d",
        "--untagged",
    )
    (listed,) = json.loads(server.admin("purge-schedule", "list", "-o", "json"))
    assert listed["name"] == "nightly" and listed["nextRunTime"].endswith("01:00:00+00:00")
    server.admin("purge-schedule", "remove", "nightly")


def test_soft_delete_list_restore_pulls_byte_identical_after_gc(
    server: RegistryServer, skopeo, tmp_path: Path
) -> None:
    soft_delete = ("config", "soft-delete", "update", "-r", "dockyard")
    server.manage(*soft_delete, "--status", "enabled", "--days", "7")
    retention = ("config", "retention", "update", "-r", "dockyard")
    refused = server.manage_run(*retention, "--status", "enabled")
    assert refused.returncode == 1
    assert len(refused.stdout.strip().splitlines()) == 1
    assert "disable soft delete first" in refused.stdout
    index = images.busybox_index()
    layout = images.write_oci_layout(tmp_path / "layout", {"multi": index})
    tls = ("--src-tls-verify=false", "--dest-tls-verify=false")
    dest = f"docker://{server.host}/soft/busybox:multi"
    skopeo("copy", *tls, "--all", "--preserve-digests", f"oci:{layout}:multi", dest)
    with server.client() as http:
        assert http.delete(f"/v2/soft/busybox/manifests/{index.digest}").status_code == 202
        assert http.delete("/acr/v1/soft/busybox").status_code == 202  # the children too
        assert http.get("/acr/v1/_deleted/_catalog").json() == {"repositories": ["soft/busybox"]}
        deleted = http.get("/acr/v1/_deleted/soft/busybox/_manifests").json()["manifests"]
        assert {m["digest"] for m in deleted} == {index.digest, *(c.digest for c in index.children)}
        tags = http.get("/acr/v1/_deleted/soft/busybox/_tags").json()["tags"]
        assert [(t["tag"], t["digest"]) for t in tags] == [("multi", index.digest)]
        assert all(t["deletedAt"].endswith("Z") for t in tags)

    server.admin("gc", "--grace", "0")  # the bin keeps every blob its manifests need

    with server.client() as http:
        restore = f"/acr/v1/_deleted/soft/busybox/_manifests/{index.digest}"
        refused = http.post(restore, json={"tag": "multi"})
        assert refused.status_code == 400, refused.text  # the children first
        for child in index.children:
            response = http.post(f"/acr/v1/_deleted/soft/busybox/_manifests/{child.digest}")
            assert response.status_code == 200, response.text
        assert http.post(restore, json={"tag": "multi"}).status_code == 200
        assert http.get("/acr/v1/_deleted/_catalog").json() == {"repositories": []}
    back = tmp_path / "back"
    skopeo("copy", *tls, "--all", "--preserve-digests", dest, f"oci:{back}:multi")
    assert images.oci_layout_ref(back, "multi")["digest"] == index.digest
    _, blobs = images.read_oci_layout(back)
    assert blobs == {**index.blobs, index.digest: index.manifest}
