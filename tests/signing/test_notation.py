"""Notation's JWS envelope: read and verified when built as notation builds it (by the
tests' own builder, tests/signing/envelopes.py), refused when any part is tampered
with, and made by `dockyard sign`'s code in a form that verifies."""

from __future__ import annotations

import base64
import json

import envelopes
import pytest

from dockyard.signing.certificates import check_chain
from dockyard.signing.cose import make_cose, parse_cose
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.notation import Target, make_jws, parse_jws

DIGEST = "sha256:" + "a" * 64
TARGET = Target(envelopes.OCI_MANIFEST, DIGEST, 1234)


@pytest.mark.parametrize("rsa_bits", [None, 2048])
def test_a_notation_envelope_verifies_and_names_its_target(rsa_bits):
    signer = envelopes.make_signer(rsa_bits=rsa_bits)
    envelope = envelopes.notation_jws(signer, envelopes.OCI_MANIFEST, DIGEST, 1234)

    signed = parse_jws(envelope)

    assert signed.target == TARGET
    assert signed.signing_scheme == "notary.x509"
    assert [c.subject for c in signed.certificates] == [c.subject for c in signer.chain]
    assert check_chain(signed.certificates, signer.chain[-1:], envelopes.NOW).trusted


def _tamper(envelope: bytes, key: str, change) -> bytes:
    doc = json.loads(envelope)
    doc[key] = change(doc[key])
    return json.dumps(doc).encode()


def _reencode(field: str, edit):
    def change(text: str) -> str:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        edit(value)
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return change


@pytest.mark.parametrize(
    ("key", "change", "why"),
    [
        (
            "payload",
            _reencode("payload", lambda p: p["targetArtifact"].update(size=1)),
            "does not verify",
        ),
        ("protected", _reencode("protected", lambda h: h.update(alg="ES384")), "does not match"),
        (
            "protected",
            _reencode("protected", lambda h: h.update(crit=[*h["crit"], "x"])),
            "unknown critical",
        ),
        ("protected", _reencode("protected", lambda h: h.update(cty="text/plain")), "content type"),
        ("protected", _reencode("protected", lambda h: h.update(alg="none")), "algorithm"),
        ("signature", lambda s: s[:-4] + "AAAA", "does not verify"),
        ("header", lambda h: {**h, "x5c": []}, "no certificate"),
    ],
)
def test_a_tampered_envelope_is_refused(key, change, why):
    signer = envelopes.make_signer()
    envelope = envelopes.notation_jws(signer, envelopes.OCI_MANIFEST, DIGEST, 1234)
    with pytest.raises(SignatureInvalid, match=why):
        parse_jws(_tamper(envelope, key, change))


def test_a_chain_to_another_root_is_not_trusted():
    signer = envelopes.make_signer()
    _, other_root = envelopes.make_ca("Other Root")
    checked = check_chain(signer.chain, [other_root], envelopes.NOW)
    assert not checked.trusted and "no trusted root" in checked.problem
    # the chain without its root still ends in the trusted root's issue
    assert check_chain(signer.chain[:1], signer.chain[-1:], envelopes.NOW).trusted


def test_dockyard_makes_envelopes_that_verify():
    signer = envelopes.make_signer(rsa_bits=3072)
    envelope = make_jws(TARGET, signer.key, signer.chain, envelopes.NOW)
    doc = json.loads(envelope)
    assert set(doc) == {"payload", "protected", "header", "signature"}
    protected = json.loads(base64.urlsafe_b64decode(doc["protected"] + "=="))
    assert protected["alg"] == "PS384" and protected["crit"] == ["io.cncf.notary.signingScheme"]
    assert parse_jws(envelope).target == TARGET


def test_a_cose_envelope_verifies_and_names_its_target():
    signer = envelopes.make_signer()
    envelope = envelopes.notation_cose(signer, envelopes.OCI_MANIFEST, DIGEST, 1234)
    signed = parse_cose(envelope)
    assert signed.target == TARGET
    assert signed.signing_time == envelopes.NOW
    tampered = envelope.replace(b'"size": 1234', b'"size": 1235')
    assert tampered != envelope
    with pytest.raises(SignatureInvalid, match="does not verify"):
        parse_cose(tampered)


def test_dockyard_makes_cose_envelopes_that_verify():
    signer = envelopes.make_signer()
    envelope = make_cose(TARGET, signer.key, signer.chain, envelopes.NOW)
    signed = parse_cose(envelope)
    assert signed.target == TARGET and signed.signing_time == envelopes.NOW
