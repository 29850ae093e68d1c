"""`dockyard import` (online, through the management API's importImage) against real
peers: a CNCF Distribution (open, and behind htpasswd) and another Dockyard (token auth)
as sources, a running Dockyard as the target; what was imported is pulled back with
skopeo and compared byte for byte."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import images
import pytest
from conftest import RegistryServer
from distribution import Distribution

pytestmark = pytest.mark.timeout(120)

LOGIN = ("importer", "s3cret-upstream")
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return images.write_oci_layout(
        tmp_path_factory.mktemp("oci") / "layout",
        {
            "latest": images.busybox_image(),
            "arm64": images.busybox_image("arm64"),
            "multi": images.busybox_index(),
        },
    )


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory, layout: Path) -> Iterator[Distribution]:
    """An open Distribution holding library/busybox:1 (one image) and :multi (an index)."""
    server = Distribution(tmp_path_factory.mktemp("distribution")).start()
    try:
        server.push(layout, "latest", "library/busybox:1")
        server.push(layout, "multi", "library/busybox:multi")
        yield server
    finally:
        server.stop()


def dockyard_import(server: RegistryServer, *args: str) -> str:
    """`dockyard import -n dockyard ARGS` against the running server; its output."""
    return server.manage("import", "-n", "dockyard", *args)


def failed_import(server: RegistryServer, *args: str) -> subprocess.CompletedProcess:
    """`dockyard_import` that must fail."""
    result = server.manage_run("import", "-n", "dockyard", *args)
    assert result.returncode == 1, result.stdout + result.stderr
    return result


def pull_back(skopeo, registry: RegistryServer, ref: str, into: Path) -> dict[str, bytes]:
    """Every blob and manifest skopeo pulls of `ref` (all platforms), by digest."""
    skopeo("copy", *TLS_OFF, "--all", "--preserve-digests", f"docker://{ref}", f"oci:{into}:x")
    return images.read_oci_layout(into)[1]


def expected(item: images.Image | images.Index) -> dict[str, bytes]:
    return {**item.blobs, item.digest: item.manifest}


def blob_files(server: RegistryServer) -> set[Path]:
    return {p for p in (server.data_dir / "blobs").rglob("*") if p.is_file()}


def test_import_image_and_index_from_distribution(registry, upstream, skopeo, tmp_path):
    image, index = images.busybox_image(), images.busybox_index()
    done = dockyard_import(
        registry, "--source", f"{upstream.host}/library/busybox:1", "--image", "imported/bb:1"
    )
    assert f"as imported/bb:1 ({image.digest})" in done
    assert pull_back(skopeo, registry, f"{registry.host}/imported/bb:1", tmp_path / "one") == (
        expected(image)
    )

    done = dockyard_import(
        registry, "--source", f"{upstream.host}/library/busybox:multi", "-t", "imported/bb:multi"
    )
    assert "3 manifest(s)" in done
    # The amd64 child's blobs are in the repository already: linked, not fetched again.
    assert "linked without copying" in done
    pulled = pull_back(skopeo, registry, f"{registry.host}/imported/bb:multi", tmp_path / "all")
    assert pulled == expected(index)

    # By digest, with no tag: the manifest is stored untagged.
    arm = index.children[1]
    dockyard_import(
        registry,
        "--source",
        f"{upstream.host}/library/busybox@{arm.digest}",
        "--repository",
        "by/digest",
    )
    with registry.client() as http:
        assert http.get(f"/v2/by/digest/manifests/{arm.digest}").content == arm.manifest
        assert http.get("/v2/by/digest/tags/list").json()["tags"] == []


def test_import_needs_the_upstreams_credentials(registry, layout, tmp_path, skopeo):
    locked = Distribution(tmp_path / "locked", login=LOGIN).start()
    try:
        locked.push(layout, "latest", "private/busybox:1")
        source = f"{locked.host}/private/busybox:1"

        refused = failed_import(registry, "--source", source, "-t", "private/bb:1")
        assert refused.returncode == 1
        message = refused.stdout.strip()
        assert "refused an anonymous pull" in message and "\n" not in message, message
        assert "Traceback" not in refused.stdout + refused.stderr

        wrong = failed_import(registry, "--source", source, "-u", LOGIN[0], "-p", "nope")
        assert wrong.returncode == 1 and "refused the credentials" in wrong.stdout
        assert "nope" not in wrong.stdout + wrong.stderr

        dockyard_import(
            registry, "--source", source, "-t", "private/bb:1", "-u", LOGIN[0], "-p", LOGIN[1]
        )
    finally:
        locked.stop()
    image = images.busybox_image()
    assert pull_back(skopeo, registry, f"{registry.host}/private/bb:1", tmp_path / "p") == (
        expected(image)
    )


def test_import_from_another_dockyard_with_token_auth(registry, tmp_path, skopeo, layout):
    """Dockyard answers with a Bearer challenge: the token dance, with and without a
    login (anonymous pull is off)."""
    source = RegistryServer(
        tmp_path / "source",
        tmp_path / "source.log",
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": "source-admin-secret"},
    ).start()
    try:
        creds = "dockyard:source-admin-secret"
        skopeo(
            "copy",
            *TLS_OFF,
            "--dest-creds",
            creds,
            "--all",
            "--preserve-digests",
            f"oci:{layout}:multi",
            f"docker://{source.host}/team/bb:multi",
        )
        ref = f"{source.host}/team/bb:multi"
        refused = failed_import(registry, "--source", ref)
        assert refused.returncode == 1 and "refused an anonymous pull" in refused.stdout
        dockyard_import(
            registry,
            "--source",
            ref,
            "-t",
            "team/bb:multi",
            "-u",
            "dockyard",
            "-p",
            "source-admin-secret",
        )
    finally:
        source.stop()
    index = images.busybox_index()
    assert pull_back(skopeo, registry, f"{registry.host}/team/bb:multi", tmp_path / "t") == (
        expected(index)
    )


def test_import_within_the_server_moves_no_byte(registry, upstream, skopeo, tmp_path):
    dockyard_import(
        registry, "--source", f"{upstream.host}/library/busybox:multi", "-t", "src/bb:m"
    )
    files = blob_files(registry)

    # No registry in the source: this registry. Its login server (or --registry): the
    # same, not over HTTP: the server sends itself no /v2 request.
    local = dockyard_import(registry, "--source", "src/bb:m", "-t", "copy/one:m")
    assert "0 blob(s) copied" in local
    before = len(registry.request_log())
    named = dockyard_import(registry, "--source", f"{registry.host}/src/bb:m", "-t", "copy/two:m")
    assert "0 blob(s) copied" in named
    by_name = dockyard_import(registry, "--source", "src/bb:m", "-r", "dockyard", "-t", "c/3:m")
    assert "as c/3:m" in by_name
    assert not [
        entry
        for entry in registry.request_log()[before:]
        if entry.get("path", "").startswith("/v2")
    ], "a local import made registry requests"
    assert blob_files(registry) == files

    index = images.busybox_index()
    for name in ("one", "two"):
        pulled = pull_back(skopeo, registry, f"{registry.host}/copy/{name}:m", tmp_path / name)
        assert pulled == expected(index)


def test_import_moves_an_existing_tag_only_when_forced(registry, upstream, layout):
    upstream.push(layout, "arm64", "library/busybox:arm")
    amd, arm = images.busybox_image(), images.busybox_image("arm64")
    dockyard_import(registry, "--source", f"{upstream.host}/library/busybox:1", "-t", "forced:1")
    # The same image again is no move: accepted.
    dockyard_import(registry, "--source", f"{upstream.host}/library/busybox:1", "-t", "forced:1")

    refused = failed_import(
        registry, "--source", f"{upstream.host}/library/busybox:arm", "-t", "forced:1"
    )
    assert refused.returncode == 1
    assert "forced:1 exists" in refused.stdout and "force" in refused.stdout
    with registry.client() as http:
        assert http.head("/v2/forced/manifests/1").headers["Docker-Content-Digest"] == amd.digest

    dockyard_import(
        registry, "--source", f"{upstream.host}/library/busybox:arm", "-t", "forced:1", "--force"
    )
    with registry.client() as http:
        assert http.head("/v2/forced/manifests/1").headers["Docker-Content-Digest"] == arm.digest


def test_import_of_a_missing_tag_or_unreachable_registry_is_one_line(registry, upstream):
    missing = failed_import(registry, "--source", f"{upstream.host}/library/busybox:nope")
    assert missing.returncode == 1
    assert "was not found upstream" in missing.stdout
    gone = failed_import(registry, "--source", "127.0.0.1:9/library/busybox:1")
    assert gone.returncode == 1 and "is unreachable" in gone.stdout
    for result in (missing, gone):
        assert len(result.stdout.strip().splitlines()) == 1, result.stdout
        assert "Traceback" not in result.stdout + result.stderr
