"""oras-py (the ORAS Python client) against a real Dockyard server: OCI artifacts.

Files pushed and pulled back byte for byte, an artifact with an ``artifactType``, a
Helm-chart-shaped artifact, and referrers (manifests with a ``subject``) found through
``GET /v2/<name>/referrers/<digest>``. oras-py cannot set ``artifactType`` in ``push``,
so that manifest goes through its lower-level ``upload_blob``/``upload_manifest``; the
referrers listing is read with raw HTTP, which oras-py has no call for.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import images
import oras.client
import oras.oci
import oras.provider
import pytest

pytestmark = pytest.mark.timeout(120)

HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
SIGNATURE_TYPE = "application/vnd.dockyard.test.signature.v1"
SIGNATURE_BLOB = "application/vnd.dockyard.test.signature.v1+json"
SBOM_CONFIG = "application/vnd.dockyard.test.sbom.config.v1+json"
TITLE = "org.opencontainers.image.title"


class Oras(oras.client.OrasClient):
    """oras-py without its retry loop.

    oras-py retries a failed request up to five times, sleeping 3 s to 83 s in between;
    a server error must fail the test at once, not minutes later.
    """

    def do_request(self, *args, **kwargs):
        return oras.provider.Registry.do_request.__wrapped__(self, *args, **kwargs)


@pytest.fixture
def oras_client(registry) -> Oras:
    return Oras(hostname=registry.host, insecure=True)


def pseudo_random(size: int, seed: bytes) -> bytes:
    out = bytearray()
    block = seed
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def sent_digest(response) -> str:
    """The digest of the manifest bytes that requests actually sent."""
    body = response.request.body
    return images.sha256_digest(body if isinstance(body, bytes) else body.encode())


def test_push_and_pull_files(registry, oras_client, tmp_path):
    src = tmp_path / "src"
    (src / "docs").mkdir(parents=True)
    readme = src / "README.md"
    readme.write_text("# Dockyard test artifact\n")
    data = src / "data.bin"
    data.write_bytes(pseudo_random(300 * 1024, b"data"))
    (src / "docs" / "a.txt").write_text("alpha\n")
    (src / "docs" / "b.txt").write_text("beta\n")

    target = f"{registry.host}/oras/files:v1"
    response = oras_client.push(
        target,
        files=[f"{readme}:text/markdown", str(data), str(src / "docs")],
        manifest_annotations={"org.opencontainers.image.description": "files"},
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    digest = response.headers["Docker-Content-Digest"]
    assert digest == sent_digest(response)
    assert response.headers["Location"].endswith(
        ("/v2/oras/files/manifests/" + digest, "/v2/oras/files/manifests/v1")
    )

    out = tmp_path / "out"
    pulled = oras_client.pull(target=target, outdir=str(out))
    assert sorted(Path(p).name for p in pulled) == ["README.md", "data.bin", "docs"]
    assert (out / "README.md").read_bytes() == readme.read_bytes()
    assert (out / "data.bin").read_bytes() == data.read_bytes()
    assert (out / "docs" / "a.txt").read_text() == "alpha\n"
    assert (out / "docs" / "b.txt").read_text() == "beta\n"

    manifest = oras_client.get_manifest(target)
    assert manifest["annotations"] == {"org.opencontainers.image.description": "files"}
    assert [(layer["mediaType"], layer["annotations"][TITLE]) for layer in manifest["layers"]] == [
        ("text/markdown", "README.md"),
        ("application/vnd.oci.image.layer.v1.tar", "data.bin"),
        ("application/vnd.oci.image.layer.v1.tar+gzip", "docs"),
    ]
    assert oras_client.get_tags(f"{registry.host}/oras/files") == ["v1"]


def test_chunked_push(registry, oras_client, tmp_path):
    """oras-py's chunked upload: POST, then PATCH with Content-Range per chunk, then PUT."""
    blob = tmp_path / "big.bin"
    blob.write_bytes(pseudo_random(1024 * 1024 + 123, b"chunked"))
    target = f"{registry.host}/oras/chunked:v1"
    response = oras_client.push(
        target,
        files=[str(blob)],
        do_chunked=True,
        chunk_size=256 * 1024,
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text
    out = tmp_path / "out"
    oras_client.pull(target=target, outdir=str(out))
    assert (out / "big.bin").read_bytes() == blob.read_bytes()


def test_artifact_type_round_trip(registry, oras_client, http, tmp_path):
    target = f"{registry.host}/oras/typed:v1"
    container = oras_client.get_container(target)
    empty = tmp_path / "empty.json"
    empty.write_bytes(images.EMPTY_JSON)
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": "busybox"}))

    config = {
        "mediaType": images.OCI_EMPTY,
        "digest": images.sha256_digest(images.EMPTY_JSON),
        "size": 2,
        "data": "e30=",
    }
    layer = oras.oci.NewLayer(str(sbom), media_type="application/spdx+json")
    layer["annotations"] = {TITLE: "sbom.spdx.json"}
    for path, desc in ((empty, config), (sbom, layer)):
        uploaded = oras_client.upload_blob(str(path), container, desc)
        assert uploaded.status_code in (200, 201), uploaded.text

    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "artifactType": "application/vnd.dockyard.test.sbom.v1",
        "config": config,
        "layers": [layer],
        "annotations": {"org.opencontainers.image.created": images.CREATED},
    }
    response = oras_client.upload_manifest(manifest, container)
    assert response.status_code == 201, response.text
    digest = response.headers["Docker-Content-Digest"]
    assert digest == sent_digest(response)

    served = http.get("/v2/oras/typed/manifests/v1", headers={"Accept": images.OCI_MANIFEST})
    assert served.status_code == 200
    assert served.content == response.request.body
    assert served.headers["Content-Type"] == images.OCI_MANIFEST
    assert oras_client.get_manifest(target)["artifactType"] == manifest["artifactType"]

    out = tmp_path / "out"
    oras_client.pull(target=target, outdir=str(out))
    assert (out / "sbom.spdx.json").read_bytes() == sbom.read_bytes()
    empty_back = http.get(f"/v2/oras/typed/blobs/{config['digest']}")
    assert empty_back.content == images.EMPTY_JSON


def helm_chart(directory: Path) -> tuple[Path, Path]:
    """A minimal Helm chart package (.tgz) and its config JSON, deterministic bytes."""
    chart_yaml = b"apiVersion: v2\nname: dockyard-demo\nversion: 0.1.0\ntype: application\n"
    files = {
        "dockyard-demo/Chart.yaml": chart_yaml,
        "dockyard-demo/values.yaml": b"replicaCount: 1\n",
        "dockyard-demo/templates/configmap.yaml": (
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n"
        ),
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = images.FIXED_MTIME
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    chart = directory / "dockyard-demo-0.1.0.tgz"
    chart.write_bytes(gzip.compress(raw.getvalue(), mtime=0))
    config = directory / "config.json"
    config.write_bytes(
        images.json_bytes(
            {"apiVersion": "v2", "name": "dockyard-demo", "version": "0.1.0", "type": "application"}
        )
    )
    return chart, config


def test_helm_chart_artifact(registry, oras_client, http, tmp_path):
    chart, config = helm_chart(tmp_path)
    target = f"{registry.host}/charts/dockyard-demo:0.1.0"
    response = oras_client.push(
        target,
        files=[f"{chart}:{HELM_CHART}"],
        manifest_config=f"{config}:{HELM_CONFIG}",
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text

    manifest = oras_client.get_manifest(target, allowed_media_type=[images.OCI_MANIFEST])
    assert manifest["config"]["mediaType"] == HELM_CONFIG
    assert manifest["config"]["digest"] == images.sha256_digest(config.read_bytes())
    assert [layer["mediaType"] for layer in manifest["layers"]] == [HELM_CHART]

    config_back = http.get(f"/v2/charts/dockyard-demo/blobs/{manifest['config']['digest']}")
    assert config_back.content == config.read_bytes()
    out = tmp_path / "out"
    oras_client.pull(target=target, outdir=str(out))
    assert (out / chart.name).read_bytes() == chart.read_bytes()
    assert oras_client.get_tags(f"{registry.host}/charts/dockyard-demo") == ["0.1.0"]


def subject_of(image: images.Image) -> dict:
    return {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}


def signature_manifest(subject: dict, signature: bytes, note: str) -> bytes:
    """A cosign/notation-shaped referrer: artifactType, empty config, one blob, subject."""
    return images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "artifactType": SIGNATURE_TYPE,
            "config": images.descriptor(images.OCI_EMPTY, images.EMPTY_JSON),
            "layers": [images.descriptor(SIGNATURE_BLOB, signature)],
            "subject": subject,
            "annotations": {"org.opencontainers.image.created": images.CREATED, "note": note},
        },
        indent=2,
    )


def push_signature(registry, repo: str, subject: dict, note: str = "sig") -> tuple[str, bytes]:
    """Push a signature referrer by digest with raw HTTP; check the OCI-Subject answer."""
    signature = json.dumps({"signed": subject["digest"], "note": note}).encode()
    registry.push_blob(repo, images.EMPTY_JSON)
    registry.push_blob(repo, signature)
    manifest = signature_manifest(subject, signature, note)
    digest = images.sha256_digest(manifest)
    response = registry.put_manifest(repo, digest, manifest, images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    assert response.headers["Docker-Content-Digest"] == digest
    assert response.headers["Location"].endswith(f"/v2/{repo}/manifests/{digest}")
    assert response.headers.get("OCI-Subject") == subject["digest"]
    return digest, manifest


def referrers(http, repo: str, digest: str, **params) -> tuple[dict, object]:
    response = http.get(f"/v2/{repo}/referrers/{digest}", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].split(";")[0].strip() == images.OCI_INDEX
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == images.OCI_INDEX
    return body, response


def test_referrers(registry, oras_client, http, tmp_path):
    repo = "oras/signed"
    image = images.busybox_image()
    registry.push_image(repo, image, "v1")
    subject = subject_of(image)

    # An SBOM pushed by oras-py with a subject and no artifactType: the registry must
    # report its config media type as the artifactType.
    sbom = tmp_path / "sbom.spdx.json"
    sbom.write_text('{"spdxVersion": "SPDX-2.3"}')
    sbom_config = tmp_path / "sbom-config.json"
    sbom_config.write_text('{"format": "spdx"}')
    pushed = oras_client.push(
        f"{registry.host}/{repo}:sbom",
        files=[f"{sbom}:application/spdx+json"],
        manifest_config=f"{sbom_config}:{SBOM_CONFIG}",
        manifest_annotations={"org.example.kind": "sbom"},
        subject=oras.oci.Subject(**subject),
        disable_path_validation=True,
        quiet=True,
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers.get("OCI-Subject") == image.digest
    sbom_digest = sent_digest(pushed)
    assert pushed.headers["Docker-Content-Digest"] == sbom_digest

    # A signature pushed by digest, untagged, with an artifactType.
    sig_digest, sig_manifest = push_signature(registry, repo, subject)

    body, response = referrers(http, repo, image.digest)
    assert "OCI-Filters-Applied" not in response.headers
    found = {d["digest"]: d for d in body["manifests"]}
    assert set(found) == {sbom_digest, sig_digest}
    sig = found[sig_digest]
    assert sig["mediaType"] == images.OCI_MANIFEST
    assert sig["size"] == len(sig_manifest)
    assert sig["artifactType"] == SIGNATURE_TYPE
    assert sig["annotations"] == {"org.opencontainers.image.created": images.CREATED, "note": "sig"}
    sbom_desc = found[sbom_digest]
    assert sbom_desc["artifactType"] == SBOM_CONFIG
    assert sbom_desc["size"] == len(pushed.request.body)
    assert sbom_desc["annotations"] == {"org.example.kind": "sbom"}

    body, response = referrers(http, repo, image.digest, artifactType=SIGNATURE_TYPE)
    assert response.headers.get("OCI-Filters-Applied") == "artifactType"
    assert [d["digest"] for d in body["manifests"]] == [sig_digest]

    body, response = referrers(http, repo, image.digest, artifactType="application/x-none")
    assert response.headers.get("OCI-Filters-Applied") == "artifactType"
    assert body["manifests"] == []

    # A manifest nobody refers to (and a digest nobody pushed) has an empty list, not 404.
    assert referrers(http, repo, sig_digest)[0]["manifests"] == []
    assert referrers(http, repo, "sha256:" + "0" * 64)[0]["manifests"] == []


def test_referrer_pushed_before_its_subject(registry, http):
    """Clients may push a referrer first; the registry must accept it and list it."""
    repo = "oras/early-referrer"
    image = images.busybox_image("arm64")
    sig_digest, _ = push_signature(registry, repo, subject_of(image), note="early")
    body, _ = referrers(http, repo, image.digest)
    assert [d["digest"] for d in body["manifests"]] == [sig_digest]

    registry.push_image(repo, image, "v1")
    body, _ = referrers(http, repo, image.digest)
    assert [d["digest"] for d in body["manifests"]] == [sig_digest]


def test_deleted_referrer_leaves_the_list(registry, http):
    repo = "oras/unsigned"
    image = images.busybox_image()
    registry.push_image(repo, image, "v1")
    keep, _ = push_signature(registry, repo, subject_of(image), note="keep")
    drop, _ = push_signature(registry, repo, subject_of(image), note="drop")
    body, _ = referrers(http, repo, image.digest)
    assert {d["digest"] for d in body["manifests"]} == {keep, drop}

    deleted = http.delete(f"/v2/{repo}/manifests/{drop}")
    assert deleted.status_code == 202, deleted.text
    body, _ = referrers(http, repo, image.digest)
    assert [d["digest"] for d in body["manifests"]] == [keep]
