"""`[storage] nginx_offload`: a node behind nginx answers a blob GET with
`X-Accel-Redirect`, after the same authorization as ever, and nginx fetches the bytes
from the bucket (a real SeaweedFS) with the pre-signed URL: the client never reaches the
bucket, the node never touches the bytes. nginx's side is tests/nginx.py's, as
docs/deploy.md gives it."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer
from nginx import Nginx

pytestmark = pytest.mark.timeout(120)

PASSWORD = "offload-admin-secret"
CREDS = f"dockyard:{PASSWORD}"
AUTH = {"Authorization": "Basic " + base64.b64encode(CREDS.encode()).decode()}
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


class Offloaded:
    def __init__(self, node: RegistryServer, balancer: Nginx, bucket: str) -> None:
        self.node, self.balancer, self.bucket = node, balancer, bucket


@pytest.fixture(scope="module")
def offloaded(seaweedfs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offloaded]:
    bucket = seaweedfs.create_bucket("offload")
    base = tmp_path_factory.mktemp("registry-offload")
    balancer = Nginx(offload=f"127.0.0.1:{seaweedfs.s3_port}")
    node = RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(*seaweedfs.serve_args(bucket), "--workers", "1", "--trusted-proxy", "127.0.0.1"),
        env={"DOCKYARD_ADMIN_PASSWORD": PASSWORD, "DOCKYARD_STORAGE__NGINX_OFFLOAD": "/_blob/"},
    )
    with node.start():
        balancer.start([node.host])
        try:
            yield Offloaded(node, balancer, bucket)
        finally:
            balancer.stop()


def push(url: str, repo: str, data: bytes) -> str:
    digest = images.sha256_digest(data)
    with httpx.Client(base_url=url, headers=AUTH) as http:
        done = http.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=data)
        assert done.status_code == 201, done.text
    return digest


def test_nginx_serves_the_bytes_the_node_points_to(offloaded: Offloaded) -> None:
    data = os.urandom(3 << 20)
    digest = push(offloaded.balancer.url, "offload/app", data)
    url = f"/v2/offload/app/blobs/{digest}"
    with httpx.Client(base_url=offloaded.node.url, headers=AUTH) as node:
        pointed = node.get(url)  # what the node answers nginx: a pointer, no bytes
        assert pointed.status_code == 200
        assert pointed.content == b""
        assert pointed.headers["X-Accel-Redirect"].startswith(f"/_blob/{digest}/")
    with httpx.Client(base_url=offloaded.balancer.url, headers=AUTH, timeout=30) as http:
        whole = http.get(url)
        assert whole.status_code == 200
        assert whole.content == data
        assert whole.headers["Docker-Content-Digest"] == digest
        assert whole.headers["ETag"] == f'"{digest}"'
        assert "X-Accel-Redirect" not in whole.headers
        ranged = http.get(url, headers={"Range": "bytes=1000-1999"})
        assert ranged.status_code == 206
        assert ranged.content == data[1000:2000]
        head = http.head(url)  # HEAD stays with the node: headers only
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(data))


def test_authorization_comes_first_and_the_internal_location_is_closed(
    offloaded: Offloaded,
) -> None:
    digest = push(offloaded.balancer.url, "offload/private", b"secret layer")
    with httpx.Client(base_url=offloaded.balancer.url) as http:
        refused = http.get(f"/v2/offload/private/blobs/{digest}")
        assert refused.status_code == 401
        assert refused.content != b"secret layer"
        pointed = httpx.get(
            f"{offloaded.node.url}/v2/offload/private/blobs/{digest}", headers=AUTH
        ).headers["X-Accel-Redirect"]
        direct = http.get(pointed)  # only nginx itself may go there
        assert direct.status_code == 503  # nginx's 404 of an internal location, mapped
        assert b"secret layer" not in direct.content


def test_bytes_missing_from_the_bucket_answer_503_in_the_registry_shape(
    offloaded: Offloaded, seaweedfs
) -> None:
    digest = push(offloaded.balancer.url, "offload/lost", b"a layer the bucket loses")
    hexdigest = digest.removeprefix("sha256:")
    key = f"dockyard/blobs/sha256/{hexdigest[:2]}/{hexdigest}"
    seaweedfs.client().delete_object(Bucket=offloaded.bucket, Key=key)
    with httpx.Client(base_url=offloaded.balancer.url, headers=AUTH) as http:
        lost = http.get(f"/v2/offload/lost/blobs/{digest}")
    assert lost.status_code == 503
    assert lost.json()["errors"][0]["code"] == "UNAVAILABLE"


def test_skopeo_copies_through_the_offload(offloaded: Offloaded, skopeo, tmp_path: Path) -> None:
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": images.busybox_image()})
    image = images.busybox_image()
    dest = f"docker://{offloaded.balancer.host}/offload/busybox:1.0"
    skopeo(
        "copy", *TLS_OFF, "--dest-creds", CREDS, "--preserve-digests",
        f"oci:{layout}:latest", dest,
    )  # fmt: skip
    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--src-creds", CREDS, "--preserve-digests", dest, f"oci:{back}:back")
    assert images.oci_layout_ref(back, "back")["digest"] == image.digest
    _, blobs = images.read_oci_layout(back)
    assert {digest: blobs[digest] for digest in image.blobs} == image.blobs
    layer = next(iter(image.blobs))
    proxied = [r for r in offloaded.balancer.requests() if r.uri.endswith(f"/blobs/{layer}")]
    assert proxied and all(r.status == 200 for r in proxied if r.method == "GET")
