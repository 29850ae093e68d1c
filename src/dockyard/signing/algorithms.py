"""The signature algorithms Notation allows (RSASSA-PSS and ECDSA, as JWS names them:
PS256/384/512, ES256/384/512), each bound to the key that must make it, and cosign's
(ECDSA with an ASN.1 DER signature, RSA PKCS#1 v1.5, Ed25519). JWS writes an ECDSA
signature as the raw `r || s`, not DER (RFC 7518 §3.4)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from dockyard.signing.errors import SignatureInvalid

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Algorithm:
    name: str
    hash: type[hashes.HashAlgorithm]
    curve: type[ec.EllipticCurve] | None  # None: RSASSA-PSS
    rsa_bits: int | None = None
    # COSE's number for it (RFC 9053)
    cose: int = 0


ALGORITHMS = {
    a.name: a
    for a in (
        Algorithm("PS256", hashes.SHA256, None, 2048, -37),
        Algorithm("PS384", hashes.SHA384, None, 3072, -38),
        Algorithm("PS512", hashes.SHA512, None, 4096, -39),
        Algorithm("ES256", hashes.SHA256, ec.SECP256R1, cose=-7),
        Algorithm("ES384", hashes.SHA384, ec.SECP384R1, cose=-35),
        Algorithm("ES512", hashes.SHA512, ec.SECP521R1, cose=-36),
    )
}
BY_COSE = {a.cose: a for a in ALGORITHMS.values()}


def algorithm_for(key: PublicKey | PrivateKey) -> Algorithm:
    """The algorithm Notation uses with this key (its size or curve decides)."""
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        bits = key.key_size
        if bits < 2048:
            raise SignatureInvalid(f"an RSA key of {bits} bits is too small (at least 2048)")
        return ALGORITHMS["PS512" if bits >= 4096 else "PS384" if bits >= 3072 else "PS256"]
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        for algorithm in ALGORITHMS.values():
            if algorithm.curve is not None and isinstance(key.curve, algorithm.curve):
                return algorithm
        raise SignatureInvalid(f"the curve {key.curve.name} is not one Notation allows")
    raise SignatureInvalid("the key is neither RSA nor ECDSA")


def _pss(algorithm: Algorithm) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(algorithm.hash()), salt_length=algorithm.hash.digest_size)


def _coordinate_size(curve: ec.EllipticCurve) -> int:
    return (curve.key_size + 7) // 8


def sign(algorithm: Algorithm, key: PrivateKey, data: bytes) -> bytes:
    """A JWS/COSE signature of `data` (ECDSA as raw r || s)."""
    if algorithm.curve is None:
        assert isinstance(key, rsa.RSAPrivateKey)
        return key.sign(data, _pss(algorithm), algorithm.hash())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(algorithm.hash())))
    size = _coordinate_size(key.curve)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def verify(algorithm: Algorithm, key: PublicKey, signature: bytes, data: bytes) -> None:
    """Raise `SignatureInvalid` unless `signature` (JWS/COSE form) is `key`'s over
    `data` and `algorithm` is the one the key makes."""
    if algorithm_for(key) != algorithm:
        raise SignatureInvalid(f"{algorithm.name} does not match the signing certificate's key")
    try:
        if algorithm.curve is None:
            assert isinstance(key, rsa.RSAPublicKey)
            key.verify(signature, data, _pss(algorithm), algorithm.hash())
            return
        assert isinstance(key, ec.EllipticCurvePublicKey)
        size = _coordinate_size(key.curve)
        if len(signature) != 2 * size:
            raise SignatureInvalid(f"an {algorithm.name} signature is {2 * size} bytes")
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(algorithm.hash()))
    except InvalidSignature:
        raise SignatureInvalid("the signature does not verify with the signing key") from None


def verify_cosign(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether `signature` (cosign's: ECDSA DER, RSA PKCS#1 v1.5 with SHA-256, or
    Ed25519) is `key`'s over `data`. ECDSA hashes with the curve's own size, as
    sigstore's verifiers do."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            digest = {256: hashes.SHA256, 384: hashes.SHA384, 521: hashes.SHA512}.get(
                key.curve.key_size, hashes.SHA256
            )
            key.verify(signature, data, ec.ECDSA(digest()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except (InvalidSignature, ValueError):
        return False
    return True
