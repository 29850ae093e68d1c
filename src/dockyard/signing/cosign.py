"""cosign's key-pair signatures (`cosign sign --key`): each a layer of a signature
manifest (tag `sha256-<hex>.sig`, or a referrer with cosign's artifact type) whose blob
is the simple-signing payload and whose annotation holds the base64 signature over
those exact bytes. A signature counts for a digest when a trusted public key verifies it
and the payload's `critical.image.docker-manifest-digest` is that digest (cosign's own
check; key names are matched in any case, as Go's JSON decoder does)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives import hashes, serialization

from dockyard.signing import algorithms
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.media_types import COSIGN_CERTIFICATE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION


@dataclass(frozen=True)
class CosignSignature:
    payload: bytes
    signature: bytes
    certificate: str | None  # keyless signatures carry one; not verified here


def parse_layer(payload: bytes, annotations: dict[str, str]) -> CosignSignature:
    encoded = annotations.get(COSIGN_SIGNATURE_ANNOTATION)
    if not encoded:
        raise SignatureInvalid("the cosign layer has no signature annotation")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise SignatureInvalid("the cosign signature is not base64") from None
    return CosignSignature(payload, signature, annotations.get(COSIGN_CERTIFICATE_ANNOTATION))


def _lower(value: object) -> object:
    if isinstance(value, dict):
        return {str(k).lower(): _lower(v) for k, v in value.items()}
    return value


def signed_digest(payload: bytes) -> str:
    """`critical.image.docker-manifest-digest` of a simple-signing payload."""
    try:
        doc = _lower(orjson.loads(payload))
    except orjson.JSONDecodeError:
        raise SignatureInvalid("the simple-signing payload is not JSON") from None
    critical = doc.get("critical") if isinstance(doc, dict) else None
    image = critical.get("image") if isinstance(critical, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(digest, str):
        raise SignatureInvalid("invalid or missing digest in claim")
    return digest


def load_public_keys(data: bytes) -> list[algorithms.PublicKey]:
    """Every `PUBLIC KEY` of a PEM file (cosign.pub)."""
    keys: list[algorithms.PublicKey] = []
    marker = b"-----BEGIN PUBLIC KEY-----"
    for block in data.split(marker)[1:]:
        try:
            key = serialization.load_pem_public_key(
                marker + block.split(b"-----END", 1)[0] + b"-----END PUBLIC KEY-----\n"
            )
        except ValueError as exc:
            raise SignatureInvalid(f"not a public key: {exc}") from None
        if not isinstance(key, algorithms.PublicKey):
            raise SignatureInvalid(
                "only ECDSA, RSA and Ed25519 public keys verify cosign signatures"
            )
        keys.append(key)
    if not keys:
        raise SignatureInvalid("no PEM PUBLIC KEY found")
    return keys


def key_id(key: algorithms.PublicKey) -> str:
    """A public key's name in verdicts: the SHA-256 of its DER, shortened."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize().hex()[:16]


def verify(signature: CosignSignature, digest: str, keys: Sequence[algorithms.PublicKey]) -> str:
    """The id of the trusted key that verifies `signature` as one of `digest`; raises
    `SignatureInvalid` otherwise."""
    if signed_digest(signature.payload) != digest:
        raise SignatureInvalid("the cosign payload signs another digest")
    for key in keys:
        if algorithms.verify_cosign(key, signature.signature, signature.payload):
            return key_id(key)
    raise SignatureInvalid("no trusted public key verifies the cosign signature")
