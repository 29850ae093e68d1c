"""The token-signing key every region of a deployment holds alike, derived from the peer
credential they share (`[region] peer_secret`): an access token one region issued is
good at every other, so a client the global endpoint moves to another region (its first
one down) goes on with the token it has. Whoever holds the peer credential could sign
tokens with it; they can already write any content into any region through the peer
endpoints, so it adds no power, and changing the credential changes the key."""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"dockyard: the regions' token-signing key (ES256)"
# The order of P-256's group: a private value is 1 .. ORDER - 1.
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def shared_signing_key(peer_secret: str) -> ec.EllipticCurvePrivateKey:
    """The same P-256 key for the same secret, in every region. 48 bytes of HKDF output
    reduced modulo the order leave no bias worth counting (2^-128)."""
    material = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=_INFO).derive(
        peer_secret.encode()
    )
    value = int.from_bytes(material, "big") % (_ORDER - 1) + 1
    return ec.derive_private_key(value, ec.SECP256R1())
