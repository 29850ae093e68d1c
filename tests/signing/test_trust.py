"""Signatures pushed through the registry API in process (Notation JWS referrers, cosign
by tag and by referrer, built by tests/signing/envelopes.py), what `/acr/v1` says of
them, and the trust policy at pull: strict and permissive refuse unsigned or untrusted
images by tag and by digest with DENIED naming the policy, audit lets them through and
logs, skip does nothing; platform manifests of a signed index and signatures
themselves stay pullable; a new signature and a policy change take effect at once."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator

import envelopes
import httpx
import images
import pytest
from endpoint import AppEndpoint

from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings
from dockyard.signing.errors import TrustPolicyInvalid


@pytest.fixture
def registry(tmp_path) -> Iterator[AppEndpoint]:
    settings = load_settings(None, data_dir=tmp_path, auth={"enabled": False})
    prepare(settings)
    endpoint = AppEndpoint(build_services(settings))
    yield endpoint
    endpoint.close()


@pytest.fixture
def http(registry) -> Iterator[httpx.Client]:
    with registry.client() as client:
        yield client


def push_image(registry: AppEndpoint, repo: str, tag: str) -> dict:
    """A small image; returns its descriptor."""
    manifest, _ = registry.push_small_image(repo, tag)
    return {
        "mediaType": images.OCI_MANIFEST,
        "digest": images.sha256_digest(manifest),
        "size": len(manifest),
    }


def push_notation(
    registry: AppEndpoint,
    repo: str,
    subject: dict,
    signer,
    cose: bool = False,
    legacy: bool = False,
    **options,
) -> str:
    make = envelopes.notation_cose if cose else envelopes.notation_jws
    envelope = make(signer, subject["mediaType"], subject["digest"], subject["size"], **options)
    registry.push_blob(repo, b"{}")
    registry.push_blob(repo, envelope)
    envelope_type = envelopes.COSE if cose else envelopes.JWS
    manifest = envelopes.notation_manifest(envelope, subject, signer.chain, envelope_type, legacy)
    digest = envelopes.digest_of(manifest)
    response = registry.put_manifest(repo, digest, manifest, images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return digest


def push_cosign(registry: AppEndpoint, repo: str, subject: dict, key, by_tag: bool) -> str:
    payload = envelopes.cosign_payload(f"localhost:5000/{repo}", subject["digest"])
    config = b'{"architecture":"","os":""}'
    registry.push_blob(repo, payload)
    registry.push_blob(repo, config)
    layer = envelopes.cosign_layer(key, payload)
    manifest = envelopes.cosign_manifest(config, [layer], None if by_tag else subject)
    reference = (
        subject["digest"].replace(":", "-") + ".sig" if by_tag else envelopes.digest_of(manifest)
    )
    response = registry.put_manifest(repo, reference, manifest, images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return envelopes.digest_of(manifest)


def policy(level: str, stores: list[str], identities: list[str] | None = None, scopes=None) -> dict:
    statement = {
        "name": f"{level}-images",
        "registryScopes": scopes or ["*"],
        "signatureVerification": {"level": level},
        "trustStores": stores,
    }
    if identities is not None:
        statement["trustedIdentities"] = identities
    return {"version": "1.0", "trustPolicies": [statement]}


IDENTITY = "x509.subject: C=US, ST=WA, O=acme-rockets.io, CN=Builder"


def enforce(registry: AppEndpoint, document: dict, stores: dict[str, bytes]) -> None:
    services = registry.services
    record = services.registries.for_host("")
    for name, material in stores.items():
        kind, _, store = name.partition(":")
        services.trust.add_store(record, kind, store, material)
    services.trust.set_policy(record, document, True)


def pull(http: httpx.Client, repo: str, reference: str) -> httpx.Response:
    return http.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": images.OCI_MANIFEST})


def test_signed_is_shown_once_a_signature_is_pushed(registry, http):
    subject = push_image(registry, "app", "v1")
    tag = http.get("/acr/v1/app/_tags/v1").json()["tag"]
    assert tag["signed"] is False
    push_notation(registry, "app", subject, envelopes.make_signer())
    assert http.get("/acr/v1/app/_tags/v1").json()["tag"]["signed"] is True
    manifest = http.get(f"/acr/v1/app/_manifests/{subject['digest']}").json()["manifest"]
    assert manifest["signed"] is True

    other = push_image(registry, "app", "v2")
    key, _ = envelopes.cosign_key()
    push_cosign(registry, "app", other, key, by_tag=True)
    assert http.get("/acr/v1/app/_tags/v2").json()["tag"]["signed"] is True


@pytest.mark.parametrize(("cose", "legacy"), [(False, False), (True, False), (False, True)])
def test_strict_refuses_unsigned_and_untrusted_and_passes_trusted(registry, http, cose, legacy):
    ca = envelopes.make_ca()
    trusted = envelopes.make_signer(ca)
    stranger = envelopes.make_signer(cn="Builder")  # same name, another root
    good = push_image(registry, "app", "good")
    bad = push_image(registry, "app", "bad")
    unsigned = push_image(registry, "app", "unsigned")
    signature = push_notation(registry, "app", good, trusted, cose, legacy)
    push_notation(registry, "app", bad, stranger)
    root = envelopes.pem_of(ca[1])
    enforce(registry, policy("strict", ["ca:acme"], [IDENTITY]), {"ca:acme": root})

    assert pull(http, "app", "good").status_code == 200
    assert pull(http, "app", good["digest"]).status_code == 200
    for reference in ("unsigned", unsigned["digest"], "bad", bad["digest"]):
        response = pull(http, "app", reference)
        assert response.status_code == 403, response.text
        error = response.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert "trust policy 'strict-images' (strict)" in error["message"]
    assert "no signature" in pull(http, "app", "unsigned").json()["errors"][0]["message"]
    assert "no trusted root" in pull(http, "app", "bad").json()["errors"][0]["message"]
    # the signature itself stays readable, so a client can verify it
    assert pull(http, "app", signature).status_code == 200
    # HEAD too
    assert http.head("/v2/app/manifests/unsigned").status_code == 403


def test_an_identity_the_policy_does_not_trust_is_refused(registry, http):
    ca = envelopes.make_ca()
    subject = push_image(registry, "app", "v1")
    push_notation(registry, "app", subject, envelopes.make_signer(ca, cn="Intern"))
    root = envelopes.pem_of(ca[1])
    enforce(registry, policy("permissive", ["ca:acme"], [IDENTITY]), {"ca:acme": root})
    response = pull(http, "app", "v1")
    assert response.status_code == 403
    assert "is not a trusted identity" in response.json()["errors"][0]["message"]


def test_strict_refuses_an_expired_signature_that_permissive_logs(registry, http, caplog):
    ca = envelopes.make_ca()
    subject = push_image(registry, "app", "v1")
    push_notation(
        registry,
        "app",
        subject,
        envelopes.make_signer(ca),
        expiry=envelopes.NOW - dt.timedelta(minutes=1),
    )
    root = envelopes.pem_of(ca[1])
    enforce(registry, policy("strict", ["ca:acme"], ["*"]), {"ca:acme": root})
    assert pull(http, "app", "v1").status_code == 403
    record = registry.services.registries.for_host("")
    registry.services.trust.set_policy(record, policy("permissive", ["ca:acme"], ["*"]))
    with caplog.at_level(logging.WARNING, logger="dockyard.signing"):
        assert pull(http, "app", "v1").status_code == 200
    assert "expired" in caplog.text


def test_audit_lets_an_unsigned_image_through_and_logs_it(registry, http, caplog):
    push_image(registry, "app", "v1")
    _, public = envelopes.cosign_key()
    enforce(registry, policy("audit", ["cosign:release"]), {"cosign:release": public})
    with caplog.at_level(logging.WARNING, logger="dockyard.signing"):
        assert pull(http, "app", "v1").status_code == 200
    assert "trust policy 'audit-images' (audit) lets app@sha256:" in caplog.text
    assert "no signature" in caplog.text


def test_skip_and_unscoped_repositories_are_not_checked(registry, http):
    push_image(registry, "app", "v1")
    push_image(registry, "tools/lint", "v1")
    _, public = envelopes.cosign_key()
    document = policy("strict", ["cosign:release"], scopes=["app"])
    document["trustPolicies"].append(
        {"name": "tools", "registryScopes": ["tools/*"], "signatureVerification": {"level": "skip"}}
    )
    enforce(registry, document, {"cosign:release": public})
    push_image(registry, "other", "v1")
    assert pull(http, "app", "v1").status_code == 403
    assert pull(http, "tools/lint", "v1").status_code == 200
    assert pull(http, "other", "v1").status_code == 200


@pytest.mark.parametrize("by_tag", [True, False])
def test_cosign_signatures_verify_against_public_keys(registry, http, by_tag):
    key, public = envelopes.cosign_key()
    wrong_key, _ = envelopes.cosign_key()
    good = push_image(registry, "app", "good")
    bad = push_image(registry, "app", "bad")
    signature = push_cosign(registry, "app", good, key, by_tag)
    push_cosign(registry, "app", bad, wrong_key, by_tag)
    enforce(registry, policy("strict", ["cosign:release"]), {"cosign:release": public})
    assert pull(http, "app", "good").status_code == 200
    # `cosign verify` reads the signature manifest: by its tag, or as a referrer
    signature_tag = good["digest"].replace(":", "-") + ".sig"
    assert pull(http, "app", signature_tag if by_tag else signature).status_code == 200
    response = pull(http, "app", "bad")
    assert response.status_code == 403
    assert "no trusted public key" in response.json()["errors"][0]["message"]


def test_a_cosign_payload_for_another_digest_does_not_count(registry, http):
    key, public = envelopes.cosign_key()
    one = push_image(registry, "app", "one")
    two = push_image(registry, "app", "two")
    # two's tag-scheme signature holds a payload signing one's digest
    payload = envelopes.cosign_payload("localhost:5000/app", one["digest"])
    config = b"{}"
    registry.push_blob("app", payload)
    registry.push_blob("app", config)
    manifest = envelopes.cosign_manifest(config, [envelopes.cosign_layer(key, payload)])
    tag = two["digest"].replace(":", "-") + ".sig"
    assert registry.put_manifest("app", tag, manifest, images.OCI_MANIFEST).status_code == 201
    enforce(registry, policy("strict", ["cosign:release"]), {"cosign:release": public})
    response = pull(http, "app", "two")
    assert response.status_code == 403
    assert "signs another digest" in response.json()["errors"][0]["message"]


def test_a_new_signature_and_a_policy_change_take_effect_at_once(registry, http):
    key, public = envelopes.cosign_key()
    subject = push_image(registry, "app", "v1")
    enforce(registry, policy("strict", ["cosign:release"]), {"cosign:release": public})
    assert pull(http, "app", "v1").status_code == 403
    assert pull(http, "app", "v1").status_code == 403  # the verdict kept
    push_cosign(registry, "app", subject, key, by_tag=False)
    assert pull(http, "app", "v1").status_code == 200
    record = registry.services.registries.for_host("")
    _other_key, other_public = envelopes.cosign_key()
    registry.services.trust.add_store(record, "cosign", "other", other_public)
    registry.services.trust.set_policy(record, policy("strict", ["cosign:other"]))
    assert pull(http, "app", "v1").status_code == 403
    registry.services.trust.set_enabled(record, False)
    assert pull(http, "app", "v1").status_code == 200


def test_platform_manifests_of_a_signed_index_are_pullable(registry, http):
    index = images.busybox_index()
    for child in index.children:
        registry.push_image("multi", child)
    registry.push_blob("multi", b"{}")
    response = registry.put_manifest("multi", "v1", index.manifest, images.OCI_INDEX)
    assert response.status_code == 201, response.text
    ca = envelopes.make_ca()
    subject = {"mediaType": images.OCI_INDEX, "digest": index.digest, "size": len(index.manifest)}
    push_notation(registry, "multi", subject, envelopes.make_signer(ca))
    root = envelopes.pem_of(ca[1])
    enforce(registry, policy("strict", ["ca:acme"], [IDENTITY]), {"ca:acme": root})
    assert pull(http, "multi", "v1").status_code == 200
    for child in index.children:
        assert pull(http, "multi", child.digest).status_code == 200


def test_the_dry_run_lists_what_the_policy_would_refuse(registry):
    key, public = envelopes.cosign_key()
    signed = push_image(registry, "app", "signed")
    push_image(registry, "app", "unsigned")
    push_cosign(registry, "app", signed, key, by_tag=True)
    services = registry.services
    record = services.registries.for_host("")
    services.trust.add_store(record, "cosign", "release", public)
    refused = list(services.trust.refusals(record, policy("strict", ["cosign:release"])))
    assert [(r.repository, r.tags, r.policy) for r in refused] == [
        ("app", ("unsigned",), "strict-images")
    ]


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"version": "2.0", "trustPolicies": []}, "version"),
        (policy("strict", ["ca:missing"], ["*"]), "no such trust store"),
        (policy("strict", ["ca:acme"]), "trustedIdentities is required"),
        (policy("lenient", ["ca:acme"], ["*"]), "level must be one of"),
        (policy("strict", ["ca:acme"], ["x509.subject: CN=Builder"]), "lacks C, ST, O"),
        (policy("strict", ["pgp:acme"], ["*"]), "TYPE:NAME"),
    ],
)
def test_a_policy_that_cannot_be_used_is_refused(registry, document, why):
    services = registry.services
    record = services.registries.for_host("")
    services.trust.add_store(record, "ca", "acme", envelopes.pem_of(envelopes.make_ca()[1]))
    with pytest.raises(TrustPolicyInvalid, match=why):
        services.trust.set_policy(record, document, True)


def test_trust_stores_hold_only_ca_certificates_or_keys(registry):
    services = registry.services
    record = services.registries.for_host("")
    leaf = envelopes.pem_of(envelopes.make_signer().chain[0])
    with pytest.raises(TrustPolicyInvalid, match="not a CA certificate"):
        services.trust.add_store(record, "ca", "acme", leaf)
    with pytest.raises(TrustPolicyInvalid, match="no PEM PUBLIC KEY"):
        services.trust.add_store(record, "cosign", "release", os.urandom(16))


def test_the_kernels_signed_counts_what_the_feature_recognises():
    from dockyard.metadata.attributes import SIGNATURE_ARTIFACT_TYPES
    from dockyard.signing import media_types

    recognised = {
        media_types.NOTATION_SIGNATURE,
        media_types.COSIGN_SIGNATURE,
        media_types.SIGSTORE_BUNDLE,
    }
    assert set(SIGNATURE_ARTIFACT_TYPES) == recognised


@pytest.mark.parametrize("disguise", ["artifact_type", "subject"])
def test_an_image_disguised_as_a_signature_or_a_referrer_is_still_judged(registry, http, disguise):
    key, public = envelopes.cosign_key()
    signed = push_image(registry, "app", "signed")
    push_cosign(registry, "app", signed, key, by_tag=True)
    config, layer = b'{"os":"linux"}', os.urandom(64)
    for blob in (config, layer):
        registry.push_blob("app", blob)
    doc = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": images.descriptor(images.OCI_CONFIG, config),
        "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer)],
    }
    if disguise == "artifact_type":
        doc["artifactType"] = envelopes.NOTATION_SIGNATURE
    else:
        doc["subject"] = signed
    response = registry.put_manifest("app", "sneaky", images.json_bytes(doc), images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    enforce(registry, policy("strict", ["cosign:release"]), {"cosign:release": public})
    assert pull(http, "app", "signed").status_code == 200
    assert pull(http, "app", "sneaky").status_code == 403


@pytest.mark.parametrize(
    ("suffix", "media_type"),
    [(".att", "application/vnd.dsse.envelope.v1+json"), (".sbom", "text/spdx+json")],
)
def test_cosign_attestations_and_sboms_are_not_refused(registry, http, suffix, media_type):
    key, public = envelopes.cosign_key()
    signed = push_image(registry, "app", "signed")
    push_cosign(registry, "app", signed, key, by_tag=True)
    config, attached = (
        b'{"architecture":"","os":""}',
        b'{"payloadType":"application/vnd.in-toto+json"}',
    )
    for blob in (config, attached):
        registry.push_blob("app", blob)
    doc = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": images.descriptor(images.OCI_CONFIG, config),
        "layers": [images.descriptor(media_type, attached)],
    }
    tag = signed["digest"].replace(":", "-") + suffix
    response = registry.put_manifest("app", tag, images.json_bytes(doc), images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    enforce(registry, policy("strict", ["cosign:release"]), {"cosign:release": public})
    assert pull(http, "app", tag).status_code == 200
