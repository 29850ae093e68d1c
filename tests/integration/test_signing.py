"""Signatures and trust policy with real clients against a real `dockyard serve`: skopeo
pushes images; `dockyard sign` signs one (Notation JWS, with a key and certificate made
here); oras-py pushes another's signature artifact, built to Notation's published format
(tests/signing/envelopes.py); the `dockyard trust` verbs add the CA, dry-run and enable a
strict policy; then skopeo's pull of the unsigned image is refused with the policy's
DENIED while the signed ones copy, and `/acr/v1` says which tags are signed."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import images
import pytest
from conftest import run_cli

sys.path.insert(0, str(Path(__file__).parent.parent / "signing"))
import envelopes
from test_oras import Oras

pytestmark = pytest.mark.timeout(180)
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")
IDENTITY = "x509.subject: C=US, ST=WA, O=acme-rockets.io, CN=Builder"


def copy_in(skopeo, registry, layout: Path, tag: str, repo: str) -> None:
    skopeo(
        "copy",
        *TLS_OFF,
        "--preserve-digests",
        f"oci:{layout}:{tag}",
        f"docker://{registry.host}/{repo}",
    )


def push_with_oras(registry, repo: str, subject: dict, signer) -> None:
    """The signature artifact as notation pushes it, through oras-py's upload calls."""
    client = Oras(hostname=registry.host, insecure=True)
    envelope = envelopes.notation_jws(
        signer, subject["mediaType"], subject["digest"], subject["size"]
    )
    manifest = json.loads(envelopes.notation_manifest(envelope, subject, signer.chain))
    # oras-py PUTs the manifest under a tag (notation pushes by digest: the same manifest)
    container = client.get_container(f"{registry.host}/{repo}:notation-signature")
    for data in (b"{}", envelope):
        blob = Path(registry.data_dir.parent / envelopes.digest_of(data).replace(":", "-"))
        blob.write_bytes(data)
        layer = {"digest": envelopes.digest_of(data), "size": len(data), "mediaType": envelopes.JWS}
        response = client.upload_blob(str(blob), container, layer)
        assert response.status_code in (200, 201, 202), response.text
    response = client.upload_manifest(manifest, container)
    assert response.status_code == 201, response.text


def test_signed_images_pull_and_an_unsigned_one_is_refused(registry, skopeo, http, tmp_path):
    amd, arm = images.busybox_image("amd64"), images.busybox_image("arm64")
    other, cose = images.busybox_image("s390x"), images.busybox_image("ppc64le")
    layout = images.write_oci_layout(
        tmp_path / "layout", {"signed": amd, "oras": arm, "unsigned": other, "cose": cose}
    )
    for tag in ("signed", "oras", "unsigned", "cose"):
        copy_in(skopeo, registry, layout, tag, f"trusted/app:{tag}")

    ca = envelopes.make_ca()
    signer = envelopes.make_signer(ca)
    (tmp_path / "key.pem").write_bytes(signer.key_pem)
    (tmp_path / "chain.pem").write_bytes(signer.chain_pem)
    (tmp_path / "root.pem").write_bytes(envelopes.pem_of(ca[1]))
    signed = run_cli(
        "sign",
        "trusted/app:signed",
        "--key",
        str(tmp_path / "key.pem"),
        "--certificate",
        str(tmp_path / "chain.pem"),
        "--name",
        registry.host,
        "--insecure",
    )
    assert signed.returncode == 0, signed.stdout + signed.stderr
    signed_cose = run_cli(
        *("sign", "trusted/app:cose", "--signature-format", "cose", "--name", registry.host),
        *("--key", str(tmp_path / "key.pem"), "--certificate", str(tmp_path / "chain.pem")),
        "--insecure",
    )
    assert signed_cose.returncode == 0, signed_cose.stdout + signed_cose.stderr
    referrers = http.get(f"/v2/trusted/app/referrers/{amd.digest}").json()["manifests"]
    assert [r["artifactType"] for r in referrers] == ["application/vnd.cncf.notary.signature"]
    assert referrers[0]["digest"] == signed.stdout.strip()

    arm_subject = {"mediaType": arm.media_type, "digest": arm.digest, "size": len(arm.manifest)}
    push_with_oras(registry, "trusted/app", arm_subject, signer)

    tags = http.get("/acr/v1/trusted/app/_tags").json()["tags"]
    assert {t["name"]: t["signed"] for t in tags} == {
        "signed": True,
        "oras": True,
        "cose": True,
        "unsigned": False,
        "notation-signature": False,  # the tag oras-py put the signature under
    }

    registry.admin(
        "trust", "store", "add", str(tmp_path / "root.pem"), "--type", "ca", "--name", "acme"
    )
    document = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "trusted-apps",
                "registryScopes": [f"{registry.host}/trusted/*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:acme"],
                "trustedIdentities": [IDENTITY],
            }
        ],
    }
    (tmp_path / "policy.json").write_text(json.dumps(document))
    dry = run_cli(
        "trust", "check", str(tmp_path / "policy.json"), "--data-dir", str(registry.data_dir)
    )
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert (
        "trusted/app@" + other.digest in dry.stdout and "1 image(s) would be refused" in dry.stdout
    )
    registry.admin("trust", "policy", "set", str(tmp_path / "policy.json"), "--enable")

    refused = None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the server reads the policy within 2 s
        refused = skopeo(
            "copy",
            *TLS_OFF,
            f"docker://{registry.host}/trusted/app:unsigned",
            f"oci:{tmp_path / 'out'}:u",
            check=False,
        )
        if refused.returncode != 0:
            break
        time.sleep(0.5)
    assert refused is not None and refused.returncode != 0
    assert (
        "denied" in refused.stderr.lower()
        and "trust policy 'trusted-apps' (strict)" in refused.stderr
    )
    for tag in ("signed", "oras", "cose"):
        skopeo(
            "copy",
            *TLS_OFF,
            f"docker://{registry.host}/trusted/app:{tag}",
            f"oci:{tmp_path / 'out'}:{tag}",
        )
    time.sleep(2.5)  # every worker process has read the policy again by now
    for _ in range(4):  # whichever worker answers
        by_digest = http.get(
            f"/v2/trusted/app/manifests/{other.digest}", headers={"Accept": other.media_type}
        )
        assert by_digest.status_code == 403
        assert by_digest.json()["errors"][0]["code"] == "DENIED"
    verified = registry.admin("trust", "verify", "trusted/app:signed")
    assert "notation" in verified and "verified" in verified and "served:" in verified
    refused_verify = run_cli(
        "trust", "verify", "trusted/app:unsigned", "--data-dir", str(registry.data_dir)
    )
    assert refused_verify.returncode == 1
    assert "refused: the image has no signature" in refused_verify.stdout
    shown = registry.admin("trust", "policy", "show")
    assert '"enabled": true' in shown and "trusted-apps" in shown
