"""The pull-through cache against a real upstream: a CNCF Distribution (open, and behind
htpasswd with a credential set), stopped half-way to show what stays served."""

from __future__ import annotations

import threading
from pathlib import Path

import images
import pytest
from conftest import RegistryServer
from distribution import Distribution
from test_import import LOGIN, expected, pull_back

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return images.write_oci_layout(
        tmp_path_factory.mktemp("oci") / "layout",
        {"latest": images.busybox_image(), "multi": images.busybox_index()},
    )


def test_first_pull_fetches_later_pulls_need_no_upstream(registry, layout, tmp_path, skopeo):
    upstream = Distribution(tmp_path / "upstream").start()
    try:
        upstream.push(layout, "latest", "library/busybox:1")
        upstream.push(layout, "multi", "library/busybox:multi")
        src = f"{upstream.host}/library/busybox"
        registry.manage(
            "cache", "create", "-r", "dockyard", "-n", "busybox", "-s", src, "-t", "cached/busybox"
        )
        registry.manage(
            "cache",
            "create",
            "-r",
            "dockyard",
            "-n",
            "mirror",
            "-s",
            f"{upstream.host}/*",
            "-t",
            "mirror/*",
        )
        index = images.busybox_index()

        # Concurrent first pulls (two server processes, several requests each): one image.
        answers: list[tuple[int, str]] = []

        def pull() -> None:
            with registry.client() as http:
                got = http.get(
                    "/v2/cached/busybox/manifests/multi", headers={"Accept": images.OCI_INDEX}
                )
                answers.append((got.status_code, got.headers.get("Docker-Content-Digest", "")))

        threads = [threading.Thread(target=pull) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [(200, index.digest)] * 6, answers

        ref = f"{registry.host}/cached/busybox:multi"
        assert pull_back(skopeo, registry, ref, tmp_path / "first") == expected(index)
        wild = f"{registry.host}/mirror/library/busybox:1"
        assert pull_back(skopeo, registry, wild, tmp_path / "wild") == expected(
            images.busybox_image()
        )
    finally:
        upstream.stop()

    # The upstream is gone: what was cached is still served, by tag and by digest.
    assert pull_back(skopeo, registry, ref, tmp_path / "second") == expected(index)
    child = index.children[1]
    with registry.client() as http:
        by_digest = http.get(f"/v2/cached/busybox/manifests/{child.digest}")
        assert by_digest.status_code == 200 and by_digest.content == child.manifest

        # Never cached, upstream down: the protocol's error, saying why.
        missing = http.get("/v2/cached/busybox/manifests/1")
        assert missing.status_code == 503
        (error,) = missing.json()["errors"]
        assert error["code"] == "UNAVAILABLE" and "is unreachable" in error["message"]
    failed = skopeo(
        "inspect", "--tls-verify=false", f"docker://{registry.host}/cached/busybox:1", check=False
    )
    assert failed.returncode != 0 and "503 Service Unavailable" in failed.stderr


def test_cache_with_a_credential_set_and_pull_only_callers(tmp_path, layout, skopeo):
    """An upstream behind htpasswd; callers here who may only pull (anonymous pull)
    still fill the cache."""
    upstream = Distribution(tmp_path / "upstream", login=LOGIN).start()
    server = RegistryServer(
        tmp_path / "dockyard",
        tmp_path / "dockyard.log",
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": "cache-admin-secret"},
    ).start()
    try:
        upstream.push(layout, "latest", "private/busybox:1")
        server.manage("registry", "update", "-n", "dockyard", "--anonymous-pull-enabled", "true")
        src = f"{upstream.host}/private/busybox"
        server.manage(
            "cache", "create", "-r", "dockyard", "-n", "private", "-s", src, "-t", "private/busybox"
        )

        # No credential set yet: the upstream refuses, the puller is told so.
        with server.client() as http:
            refused = http.get("/v2/private/busybox/manifests/1")
        assert refused.status_code == 503
        assert "refused an anonymous pull" in refused.json()["errors"][0]["message"]

        wrong_server = server.manage_run(
            "credential-set",
            "create",
            "-r",
            "dockyard",
            "-n",
            "elsewhere",
            "-l",
            "other.example",
            "-u",
            "x",
            "-p",
            "y",
        )
        assert wrong_server.returncode == 0, wrong_server.stdout + wrong_server.stderr
        mismatch = server.manage_run(
            "cache", "update", "-r", "dockyard", "-n", "private", "--cred-set", "elsewhere"
        )
        assert mismatch.returncode == 1 and "is for other.example" in mismatch.stdout

        server.manage(
            "credential-set",
            "create",
            "-r",
            "dockyard",
            "-n",
            "upstream-login",
            "-l",
            upstream.host,
            "-u",
            LOGIN[0],
            "-p",
            LOGIN[1],
        )
        server.manage(
            "cache", "update", "-r", "dockyard", "-n", "private", "--cred-set", "upstream-login"
        )
        shown = server.manage("credential-set", "show", "-r", "dockyard", "-n", "upstream-login")
        assert LOGIN[0] in shown and LOGIN[1] not in shown
        assert LOGIN[1].encode() not in (server.data_dir / "dockyard.db").read_bytes()
        in_use = server.manage_run(
            "credential-set", "delete", "-r", "dockyard", "-n", "upstream-login"
        )
        assert in_use.returncode == 1 and "used by cache rule(s) private" in in_use.stdout

        ref = f"{server.host}/private/busybox:1"
        assert pull_back(skopeo, server, ref, tmp_path / "pulled") == expected(
            images.busybox_image()
        )
        listed = server.manage("cache", "list", "-r", "dockyard")
        assert "private/busybox" in listed and "upstream-login" in listed
    finally:
        upstream.stop()
        server.stop()
    assert "Traceback" not in server.log_path.read_text()


def test_cache_rules_refuse_overlaps_and_existing_targets(registry):
    registry.push_image("taken/app", images.busybox_image(), "1")
    exists = registry.manage_run(
        "cache",
        "create",
        "-r",
        "dockyard",
        "-n",
        "taken",
        "-s",
        "docker.io/library/app",
        "-t",
        "taken/app",
    )
    assert exists.returncode == 1 and "exists" in exists.stdout
    registry.manage(
        "cache", "create", "-r", "dockyard", "-n", "hub-all", "-s", "docker.io/*", "-t", "hub/*"
    )
    nested = registry.manage_run(
        "cache",
        "create",
        "-r",
        "dockyard",
        "-n",
        "nested",
        "-s",
        "ghcr.io/org/*",
        "-t",
        "hub/org/*",
    )
    assert nested.returncode == 1 and "overlaps cache rule 'hub-all'" in nested.stdout
    # A static rule under a wildcard one is allowed; Docker Hub names get library/.
    registry.manage(
        "cache",
        "create",
        "-r",
        "dockyard",
        "-n",
        "ubuntu",
        "-s",
        "docker.io/ubuntu",
        "-t",
        "hub/ubuntu",
    )
    shown = registry.manage("cache", "show", "-r", "dockyard", "-n", "ubuntu")
    assert "docker.io/library/ubuntu" in shown
    registry.manage("cache", "delete", "-r", "dockyard", "-n", "ubuntu")
    gone = registry.manage_run("cache", "show", "-r", "dockyard", "-n", "ubuntu")
    assert gone.returncode == 1 and "The cache rule 'ubuntu' was not found" in gone.stdout
