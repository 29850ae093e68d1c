"""skopeo (Debian's, a real containers/image client) against a real Dockyard server, and
what it shows of a lock that refuses its push or pull.

Each round trip uses ``--preserve-digests``, so skopeo fails rather than rewriting a
manifest; the bytes that come back are compared with the bytes that were built.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import images
import pytest

pytestmark = pytest.mark.timeout(120)

TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout with a single-platform image ('latest') and an index ('multi')."""
    return images.write_oci_layout(
        tmp_path_factory.mktemp("oci") / "layout",
        {"latest": images.busybox_image(), "multi": images.busybox_index()},
    )


def expected_blobs(item: images.Image | images.Index) -> dict[str, bytes]:
    out = dict(item.blobs)
    out[item.digest] = item.manifest
    return out


def check_served_manifest(http, repo: str, ref: str, item) -> None:
    """The registry serves exactly the pushed bytes, with the right type and digest."""
    response = http.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": item.media_type})
    assert response.status_code == 200, response.text
    assert response.content == item.manifest
    assert response.headers["Content-Type"] == item.media_type
    assert response.headers["Docker-Content-Digest"] == item.digest
    head = http.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": item.media_type})
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == item.digest
    assert int(head.headers["Content-Length"]) == len(item.manifest)


def check_served_blobs(http, repo: str, blobs: dict[str, bytes]) -> None:
    for digest, data in blobs.items():
        response = http.get(f"/v2/{repo}/blobs/{digest}")
        assert response.status_code == 200, (digest, response.status_code)
        assert hashlib.sha256(response.content).hexdigest() == digest.removeprefix("sha256:")
        assert response.content == data
        assert response.headers["Docker-Content-Digest"] == digest


def test_copy_oci_image_round_trip(registry, skopeo, http, layout, tmp_path):
    image = images.busybox_image()
    dest = f"docker://{registry.host}/skopeo/busybox:1.0"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", dest)

    check_served_manifest(http, "skopeo/busybox", "1.0", image)
    check_served_manifest(http, "skopeo/busybox", image.digest, image)
    check_served_blobs(http, "skopeo/busybox", image.blobs)

    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--preserve-digests", dest, f"oci:{back}:back")
    ref = images.oci_layout_ref(back, "back")
    assert ref["digest"] == image.digest
    assert ref["mediaType"] == images.OCI_MANIFEST
    _, blobs = images.read_oci_layout(back)
    assert blobs == expected_blobs(image)

    # ... and by digest, not only by tag.
    by_digest = tmp_path / "by-digest"
    skopeo(
        "copy",
        *TLS_OFF,
        f"docker://{registry.host}/skopeo/busybox@{image.digest}",
        f"oci:{by_digest}:x",
    )
    assert images.oci_layout_ref(by_digest, "x")["digest"] == image.digest


def test_copy_all_multi_arch_round_trip(registry, skopeo, http, layout, tmp_path):
    index = images.busybox_index()
    dest = f"docker://{registry.host}/skopeo/multi:2.0"
    skopeo("copy", *TLS_OFF, "--all", "--preserve-digests", f"oci:{layout}:multi", dest)

    check_served_manifest(http, "skopeo/multi", "2.0", index)
    for child in index.children:
        check_served_manifest(http, "skopeo/multi", child.digest, child)
    check_served_blobs(http, "skopeo/multi", images.busybox_image("arm64").blobs)

    raw = skopeo("inspect", "--tls-verify=false", "--raw", dest).stdout
    assert raw.encode() == index.manifest

    arm = json.loads(
        skopeo("--override-arch", "arm64", "inspect", "--tls-verify=false", dest).stdout
    )
    assert arm["Architecture"] == "arm64"
    assert arm["Digest"] == index.digest  # skopeo reports the digest of what the tag names

    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--all", "--preserve-digests", dest, f"oci:{back}:multi")
    ref = images.oci_layout_ref(back, "multi")
    assert (ref["digest"], ref["mediaType"]) == (index.digest, images.OCI_INDEX)
    _, blobs = images.read_oci_layout(back)
    assert blobs == expected_blobs(index)


def test_inspect(registry, skopeo, layout):
    image = images.busybox_image()
    ref = f"docker://{registry.host}/skopeo/inspect:v1"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", ref)

    info = json.loads(skopeo("inspect", "--tls-verify=false", ref).stdout)
    assert info["Digest"] == image.digest
    assert info["Architecture"] == "amd64"
    assert info["Os"] == "linux"
    assert info["Layers"] == [images.sha256_digest(image.layers[0])]
    assert info["RepoTags"] == ["v1"]
    assert info["Name"] == f"{registry.host}/skopeo/inspect"

    raw = skopeo("inspect", "--tls-verify=false", "--raw", ref).stdout
    assert raw.encode() == image.manifest
    config = skopeo("inspect", "--tls-verify=false", "--config", "--raw", ref).stdout
    assert config.encode() == image.config


def test_list_tags(registry, skopeo, layout):
    src = f"oci:{layout}:latest"
    for tag in ("1", "1.0", "latest", "stable"):
        skopeo("copy", *TLS_OFF, src, f"docker://{registry.host}/skopeo/tags:{tag}")
    listing = json.loads(
        skopeo("list-tags", "--tls-verify=false", f"docker://{registry.host}/skopeo/tags").stdout
    )
    assert listing["Repository"] == f"{registry.host}/skopeo/tags"
    assert sorted(listing["Tags"]) == ["1", "1.0", "latest", "stable"]


def test_list_tags_of_unknown_repository_fails(registry, skopeo, http):
    repo = "skopeo/never-pushed"
    result = skopeo(
        "list-tags", "--tls-verify=false", f"docker://{registry.host}/{repo}", check=False
    )
    assert result.returncode != 0
    assert "404" in result.stderr
    response = http.get(f"/v2/{repo}/tags/list")
    assert response.status_code == 404
    assert [e["code"] for e in response.json()["errors"]] == ["NAME_UNKNOWN"]


def test_delete(registry, skopeo, http, layout):
    image = images.busybox_image()
    repo = "skopeo/delete-me"
    ref = f"docker://{registry.host}/{repo}:doomed"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", ref)
    accept = {"Accept": images.OCI_MANIFEST}
    assert http.get(f"/v2/{repo}/manifests/{image.digest}", headers=accept).status_code == 200

    skopeo("delete", "--tls-verify=false", ref)

    for reference in (image.digest, "doomed"):
        gone = http.get(f"/v2/{repo}/manifests/{reference}", headers=accept)
        assert gone.status_code == 404, (reference, gone.status_code)
        codes = [e["code"] for e in gone.json()["errors"]]
        assert codes == ["MANIFEST_UNKNOWN"], (reference, codes)
        assert http.head(f"/v2/{repo}/manifests/{reference}", headers=accept).status_code == 404
    assert skopeo("inspect", "--tls-verify=false", ref, check=False).returncode != 0


def test_copy_between_repositories_mounts_blobs(registry, skopeo, http, layout):
    image = images.busybox_image()
    source = f"docker://{registry.host}/skopeo/mount-src:1"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", source)

    copied = skopeo(
        "copy",
        *TLS_OFF,
        "--preserve-digests",
        source,
        f"docker://{registry.host}/skopeo/mount-dst:1",
    )
    # containers/image tries a cross-repository mount for a layer it knows to be in the
    # same registry (and uploads the config anew). In the server's request log a mount is
    # a POST to the upload endpoint answered 201 Created; an upload starts with 202.
    uploads = [
        entry
        for entry in registry.request_log()
        if entry.get("method") == "POST"
        and entry.get("path") == "/v2/skopeo/mount-dst/blobs/uploads/"
    ]
    assert [e.get("status") for e in uploads].count(201) == 1, (
        f"expected one mount among {uploads}\n{copied.stderr}"
    )
    check_served_manifest(http, "skopeo/mount-dst", "1", image)
    check_served_blobs(http, "skopeo/mount-dst", image.blobs)


def test_cross_repository_mount_by_hand(registry, http, layout):
    image = images.busybox_image()
    registry.push_image("skopeo/mount-origin", image, "1")
    layer = images.sha256_digest(image.layers[0])

    # A repository with no link to the blob cannot read it ...
    assert http.get(f"/v2/skopeo/mount-target/blobs/{layer}").status_code == 404
    assert http.head(f"/v2/skopeo/mount-target/blobs/{layer}").status_code == 404

    # ... until it mounts it from a repository that has one.
    mounted = http.post(
        "/v2/skopeo/mount-target/blobs/uploads/",
        params={"mount": layer, "from": "skopeo/mount-origin"},
    )
    assert mounted.status_code == 201, mounted.text
    assert mounted.headers["Docker-Content-Digest"] == layer
    assert mounted.headers["Location"].endswith(f"/v2/skopeo/mount-target/blobs/{layer}")
    assert http.get(f"/v2/skopeo/mount-target/blobs/{layer}").content == image.layers[0]

    # Mounting from a repository that does not hold the blob falls back to an upload.
    fallback = http.post(
        "/v2/skopeo/mount-elsewhere/blobs/uploads/",
        params={"mount": layer, "from": "skopeo/never-pushed"},
    )
    assert fallback.status_code == 202, fallback.text
    assert "/v2/skopeo/mount-elsewhere/blobs/uploads/" in fallback.headers["Location"]
    assert http.get(f"/v2/skopeo/mount-elsewhere/blobs/{layer}").status_code == 404


def test_docker_schema2_round_trip(registry, skopeo, http, tmp_path):
    """A Docker schema2 image (3-space indented JSON) keeps its exact bytes and type."""
    image = images.busybox_image(docker=True)
    source = images.write_dir_layout(tmp_path / "src", image)
    dest = f"docker://{registry.host}/skopeo/docker:v2s2"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"dir:{source}", dest)

    check_served_manifest(http, "skopeo/docker", "v2s2", image)
    check_served_blobs(http, "skopeo/docker", image.blobs)

    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--preserve-digests", dest, f"dir:{back}")
    manifest, blobs = images.read_dir_layout(back)
    assert manifest == image.manifest
    assert blobs == image.blobs


def test_convert_to_v2s2_on_push(registry, skopeo, http, layout, tmp_path):
    """``--format v2s2``: skopeo converts the OCI image; the registry stores what it sent."""
    oci = images.busybox_image()
    dest = f"docker://{registry.host}/skopeo/converted:1"
    skopeo("copy", *TLS_OFF, "--format", "v2s2", f"oci:{layout}:latest", dest)

    raw = skopeo("inspect", "--tls-verify=false", "--raw", dest).stdout.encode()
    manifest = json.loads(raw)
    assert manifest["mediaType"] == images.DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == images.DOCKER_CONFIG
    assert manifest["config"]["digest"] == images.sha256_digest(oci.config)
    assert [layer["digest"] for layer in manifest["layers"]] == [
        images.sha256_digest(oci.layers[0])
    ]
    served = http.get(
        "/v2/skopeo/converted/manifests/1", headers={"Accept": images.DOCKER_MANIFEST}
    )
    assert served.status_code == 200
    assert served.content == raw
    assert served.headers["Content-Type"] == images.DOCKER_MANIFEST
    assert served.headers["Docker-Content-Digest"] == images.sha256_digest(raw)

    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--preserve-digests", dest, f"dir:{back}")
    manifest_back, blobs = images.read_dir_layout(back)
    assert manifest_back == raw
    assert blobs == oci.blobs


def test_copy_all_as_docker_manifest_list(registry, skopeo, http, layout, tmp_path):
    """``--all --format v2s2``: a Docker manifest list over Docker schema2 children."""
    dest = f"docker://{registry.host}/skopeo/docker-list:1"
    skopeo("copy", *TLS_OFF, "--all", "--format", "v2s2", f"oci:{layout}:multi", dest)

    raw = skopeo("inspect", "--tls-verify=false", "--raw", dest).stdout.encode()
    listing = json.loads(raw)
    assert listing["mediaType"] == images.DOCKER_LIST
    assert [m["platform"]["architecture"] for m in listing["manifests"]] == ["amd64", "arm64"]
    served = http.get("/v2/skopeo/docker-list/manifests/1", headers={"Accept": images.DOCKER_LIST})
    assert served.status_code == 200
    assert served.content == raw
    assert served.headers["Content-Type"] == images.DOCKER_LIST
    assert served.headers["Docker-Content-Digest"] == images.sha256_digest(raw)
    for child in listing["manifests"]:
        assert child["mediaType"] == images.DOCKER_MANIFEST
        got = http.get(
            f"/v2/skopeo/docker-list/manifests/{child['digest']}",
            headers={"Accept": images.DOCKER_MANIFEST},
        )
        assert got.status_code == 200
        assert images.sha256_digest(got.content) == child["digest"]
        assert got.headers["Content-Type"] == images.DOCKER_MANIFEST

    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--all", "--preserve-digests", dest, f"dir:{back}")
    assert (back / "manifest.json").read_bytes() == raw


# -- what skopeo shows of a lock (the lock table itself: tests/api/test_acr.py) ---------------


def lock(http, path: str, **attributes: bool) -> None:
    response = http.patch(path, json=attributes)
    assert response.status_code == 200, response.text


def test_skopeo_push_into_a_write_locked_repository_is_refused(
    registry, http, skopeo, layout
) -> None:
    dest = f"docker://{registry.host}/locks/skopeo-push:v1"
    skopeo("copy", *TLS_OFF, f"oci:{layout}:latest", dest)
    lock(http, "/acr/v1/locks/skopeo-push", writeEnabled=False)
    result = skopeo("copy", *TLS_OFF, f"oci:{layout}:latest", f"{dest[:-2]}v2", check=False)
    assert result.returncode != 0
    # skopeo shows the registry's message: which lock, and how to lift it.
    assert 'denied: push refused: repository \\"locks/skopeo-push\\" has writeEnabled=false' in (
        result.stderr
    )
    assert http.get("/acr/v1/locks/skopeo-push").json()["tagCount"] == 1
    lock(http, "/acr/v1/locks/skopeo-push", writeEnabled=True)
    skopeo("copy", *TLS_OFF, f"oci:{layout}:latest", f"{dest[:-2]}v2")


def test_skopeo_pull_of_a_read_locked_tag_is_refused(
    registry, http, skopeo, layout, tmp_path
) -> None:
    source = f"docker://{registry.host}/locks/skopeo-pull:v1"
    skopeo("copy", *TLS_OFF, f"oci:{layout}:latest", source)
    lock(http, "/acr/v1/locks/skopeo-pull/_tags/v1", readEnabled=False)
    result = skopeo("copy", *TLS_OFF, source, f"oci:{tmp_path / 'out'}:x", check=False)
    assert result.returncode != 0
    assert "denied: pull refused" in result.stderr
    assert "PATCH /acr/v1/locks/skopeo-pull/_tags/v1" in result.stderr
    assert skopeo("inspect", "--tls-verify=false", source, check=False).returncode != 0
    lock(http, "/acr/v1/locks/skopeo-pull/_tags/v1", readEnabled=True)
    skopeo("copy", *TLS_OFF, source, f"oci:{tmp_path / 'out'}:x")
