"""Signatures as the usual tools make them, built here with `cryptography` from the
published formats (not with Dockyard's code): a CA and a signing certificate (the
Notary Project's certificate rules), Notation's JWS envelope and signature manifest,
cosign's key pair, simple-signing payload and signature manifests (tag scheme and
referrers mode). Used by the signing tests in process and against a real server."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from dataclasses import dataclass

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD = "application/vnd.cncf.notary.payload.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def name(cn: str, org: str = "acme-rockets.io") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


@dataclass
class Signer:
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    chain: list[x509.Certificate]  # leaf first, root last

    @property
    def root_pem(self) -> bytes:
        return self.chain[-1].public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)


def make_ca(
    cn: str = "Acme Root CA", days: int = 365
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_signer(
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
    cn: str = "Builder",
    rsa_bits: int | None = None,
    not_after: dt.datetime | None = None,
) -> Signer:
    ca_key, ca_cert = ca or make_ca()
    key = (
        rsa.generate_private_key(65537, rsa_bits)
        if rsa_bits
        else ec.generate_private_key(ec.SECP256R1())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(not_after or NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return Signer(key, [cert, ca_cert])


def notation_jws(
    signer: Signer, media_type: str, digest: str, size: int, expiry: dt.datetime | None = None
) -> bytes:
    """A JWS envelope as notation makes it (signature-envelope-jws.md)."""
    protected: dict = {
        "alg": "ES256" if isinstance(signer.key, ec.EllipticCurvePrivateKey) else "PS256",
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": PAYLOAD,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if expiry is not None:
        protected["io.cncf.notary.expiry"] = expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        protected["crit"].append("io.cncf.notary.expiry")
    payload = json.dumps(
        {"targetArtifact": {"mediaType": media_type, "digest": digest, "size": size}}
    )
    signing_input = f"{b64url(json.dumps(protected).encode())}.{b64url(payload.encode())}"
    if isinstance(signer.key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(
            signer.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = signer.key.sign(
            signing_input.encode(),
            padding.PSS(padding.MGF1(hashes.SHA256()), 32),
            hashes.SHA256(),
        )
    protected_text, payload_text = signing_input.split(".")
    return json.dumps(
        {
            "payload": payload_text,
            "protected": protected_text,
            "header": {
                "x5c": [
                    base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode()
                    for c in signer.chain
                ],
                "io.cncf.notary.signingAgent": "notation-go/1.3.0",
            },
            "signature": b64url(signature),
        }
    ).encode()


def notation_manifest(
    envelope: bytes,
    subject: dict,
    chain: list[x509.Certificate],
    envelope_type: str = JWS,
    legacy: bool = False,
) -> bytes:
    """The signature manifest notation pushes: artifactType, empty config, one layer,
    the subject and the thumbprint annotation; `legacy`: Notation's form for registries
    without artifactType (the config's media type says what it is)."""
    thumbprints = json.dumps([c.fingerprint(hashes.SHA256()).hex() for c in chain])
    kind = (
        {"config": {"mediaType": NOTATION_SIGNATURE, "digest": digest_of(b"{}"), "size": 2}}
        if legacy
        else {
            "artifactType": NOTATION_SIGNATURE,
            "config": {"mediaType": EMPTY, "digest": digest_of(b"{}"), "size": 2},
        }
    )
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            **kind,
            "layers": [
                {"mediaType": envelope_type, "digest": digest_of(envelope), "size": len(envelope)}
            ],
            "subject": subject,
            "annotations": {
                "io.cncf.notary.x509chain.thumbprint#S256": thumbprints,
                "org.opencontainers.image.created": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }
    ).encode()


def cosign_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, public


def cosign_payload(reference: str, digest: str) -> bytes:
    return json.dumps(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    ).encode()


def cosign_layer(key: ec.EllipticCurvePrivateKey, payload: bytes) -> dict:
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    return {
        "mediaType": SIMPLE_SIGNING,
        "digest": digest_of(payload),
        "size": len(payload),
        "annotations": {"dev.cosignproject.cosign/signature": base64.b64encode(signature).decode()},
    }


def cosign_manifest(config: bytes, layers: list[dict], subject: dict | None = None) -> bytes:
    """The tag scheme's manifest, or (with `subject`) the referrers mode's."""
    doc: dict = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": COSIGN_SIGNATURE
            if subject
            else "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": layers,
    }
    if subject is not None:
        doc["artifactType"] = COSIGN_SIGNATURE
        doc["subject"] = subject
    return json.dumps(doc).encode()


def pem_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def notation_cose(signer: Signer, media_type: str, digest: str, size: int) -> bytes:
    """A COSE_Sign1_Tagged envelope as notation makes it (signature-envelope-cose.md),
    with an ECDSA P-256 signer."""
    protected = cbor2.dumps(
        {
            1: -7,  # ES256
            2: ["io.cncf.notary.signingScheme"],
            3: PAYLOAD,
            "io.cncf.notary.signingScheme": "notary.x509",
            "io.cncf.notary.signingTime": cbor2.CBORTag(1, int(NOW.timestamp())),
        }
    )
    payload = json.dumps(
        {"targetArtifact": {"mediaType": media_type, "digest": digest, "size": size}}
    ).encode()
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    assert isinstance(signer.key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(signer.key.sign(to_be_signed, ec.ECDSA(hashes.SHA256())))
    unprotected = {
        33: [c.public_bytes(serialization.Encoding.DER) for c in signer.chain],
        "io.cncf.notary.signingAgent": "notation-go/1.3.0",
    }
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))
