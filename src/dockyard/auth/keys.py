"""Token-signing keys: ES256 key pairs kept (encrypted) in the database, so every node
signs and verifies with the same keys. The newest key signs; older ones keep verifying
until they are retired, so a rotation never invalidates tokens already handed out."""

from __future__ import annotations

import base64
import hashlib
import threading

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from dockyard.auth.secret_box import SecretBox
from dockyard.metadata.access import AccessStore, AccessWrites
from dockyard.metadata.store import Metadata

ALGORITHM = "ES256"


def _kid(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:16]).decode().rstrip("=")


class SigningKeys:
    def __init__(self, meta: Metadata, box: SecretBox) -> None:
        self._meta = meta
        self._store = AccessStore(meta)
        self._box = box
        self._lock = threading.Lock()
        self._private: dict[str, ec.EllipticCurvePrivateKey] = {}
        self._signing_kid: str | None = None
        self._shared: tuple[str, ec.EllipticCurvePrivateKey] | None = None

    def share(self, key: ec.EllipticCurvePrivateKey) -> None:
        """Sign with `key` from now on, and verify with it beside the database's keys: a
        key other deployments hold too (the regions of a geo-replicated one), so that a
        token one of them issued is good at all of them."""
        self._shared = (_kid(key.public_key()), key)

    def _load(self) -> None:
        private, signing = {}, None
        for record in self._store.signing_keys():
            key = serialization.load_pem_private_key(
                self._box.open(record.private_key).encode(), password=None
            )
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            private[record.kid] = key
            if record.retired_at is None:
                signing = record.kid
        self._private, self._signing_kid = private, signing

    def rotate(self) -> str:
        """Make a new signing key; older keys stop signing but still verify."""
        key = ec.generate_private_key(ec.SECP256R1())
        kid = _kid(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with self._meta.transaction() as tx:
            writes = AccessWrites(tx)
            writes.add_signing_key(kid, ALGORITHM, self._box.seal(pem))
            writes.retire_signing_keys(keep=kid)
        with self._lock:
            self._load()
        return kid

    def signing_key(self) -> tuple[str, ec.EllipticCurvePrivateKey]:
        if self._shared is not None:
            return self._shared
        with self._lock:
            if self._signing_kid is None:
                self._load()
        if self._signing_kid is None:
            self.rotate()
        assert self._signing_kid is not None
        return self._signing_kid, self._private[self._signing_kid]

    def verification_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        if self._shared is not None and self._shared[0] == kid:
            return self._shared[1].public_key()
        key = self._private.get(kid)
        if key is None:
            with self._lock:
                self._load()  # another node may have rotated
            key = self._private.get(kid)
        return None if key is None else key.public_key()

    def jwks(self) -> dict:
        with self._lock:
            self._load()
        keys = []
        private = dict(self._private)
        if self._shared is not None:
            private[self._shared[0]] = self._shared[1]
        for kid, key in private.items():
            jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": ALGORITHM})
        return {"keys": keys}
