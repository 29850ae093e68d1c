"""`--s3-redirect`: blob GETs answer 307 to a pre-signed URL of the bucket (a real
SeaweedFS), after the same authorization as ever; real clients follow it."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer

pytestmark = pytest.mark.timeout(120)

PASSWORD = "redirect-admin-secret"
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")
AUTH = {"Authorization": "Basic " + base64.b64encode(f"dockyard:{PASSWORD}".encode()).decode()}


@pytest.fixture(scope="module")
def redirecting(seaweedfs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    bucket = seaweedfs.create_bucket("redirect")
    base = tmp_path_factory.mktemp("registry-redirect")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(*seaweedfs.serve_args(bucket), "--s3-redirect"),
        env={"DOCKYARD_ADMIN_PASSWORD": PASSWORD},
    ).start() as server:
        yield server


def push(server: RegistryServer, repo: str, data: bytes) -> str:
    digest = images.sha256_digest(data)
    with httpx.Client(base_url=server.url, headers=AUTH) as http:
        done = http.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data)
        assert done.status_code == 201, done.text
    return digest


def test_blob_get_redirects_to_the_bucket_and_clients_follow(redirecting, seaweedfs) -> None:
    data = os.urandom(3 << 20)
    digest = push(redirecting, "redirect/app", data)
    url = f"/v2/redirect/app/blobs/{digest}"
    with httpx.Client(base_url=redirecting.url, headers=AUTH, timeout=30) as http:
        answer = http.get(url)
        assert answer.status_code == 307
        assert answer.headers["Location"].startswith(seaweedfs.endpoint + "/")
        assert answer.headers["Docker-Content-Digest"] == digest
        # httpx drops Authorization on the cross-origin hop: the signature alone lets S3 in.
        followed = http.get(url, follow_redirects=True)
        assert followed.status_code == 200
        assert followed.url.port == seaweedfs.s3_port
        assert followed.content == data
        ranged = http.get(url, headers={"Range": "bytes=1000-1999"}, follow_redirects=True)
        assert ranged.status_code == 206
        assert ranged.content == data[1000:2000]
        head = http.head(url)  # HEAD stays here: headers only, no redirect
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))


def test_authorization_comes_before_the_redirect(redirecting) -> None:
    digest = push(redirecting, "redirect/private", b"secret layer")
    url = f"{redirecting.url}/v2/redirect/private/blobs/{digest}"
    refused = httpx.get(url)
    assert refused.status_code == 401
    assert "Location" not in refused.headers
    unknown = httpx.get(f"{redirecting.url}/v2/redirect/other/blobs/{digest}", headers=AUTH)
    assert unknown.status_code == 404  # no link in that repository: no URL either


def test_skopeo_copies_through_redirects(redirecting, skopeo, tmp_path: Path) -> None:
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": images.busybox_image()})
    image = images.busybox_image()
    creds = f"dockyard:{PASSWORD}"
    dest = f"docker://{redirecting.host}/redirect/busybox:1.0"
    skopeo(
        "copy", *TLS_OFF, "--dest-creds", creds, "--preserve-digests",
        f"oci:{layout}:latest", dest,
    )  # fmt: skip
    layer = next(iter(image.blobs))
    with httpx.Client(base_url=redirecting.url, headers=AUTH) as http:
        assert http.get(f"/v2/redirect/busybox/blobs/{layer}").status_code == 307
    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--src-creds", creds, "--preserve-digests", dest, f"oci:{back}:back")
    assert images.oci_layout_ref(back, "back")["digest"] == image.digest
    _, blobs = images.read_oci_layout(back)
    assert {digest: blobs[digest] for digest in image.blobs} == image.blobs
