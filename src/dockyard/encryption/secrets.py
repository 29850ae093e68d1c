"""A registry's secrets under its own data keys (`auth.secret_box.RegistrySealer`): once
its encryption is on, its admin passwords, credential sets and webhook addresses and
headers are sealed with AES-256-GCM under a key derived from its current data key, so
revoking the registry's key-encryption key makes them unreadable as well as its blobs.

A sealed value is `dk1:<data key id>:<base64 of nonce, ciphertext and tag>`; the key id
is also the associated data, so a value cannot be moved under another key's name."""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dockyard.auth.secret_box import REGISTRY_SEALED, SealedWithAnotherKey
from dockyard.storage.encrypted import Keyring

_INFO = b"dockyard registry secrets v1"
_NONCE = 12


class RegistrySecretSealer:
    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    def seal(self, plaintext: bytes) -> str:
        key_id, key = self._keyring.current()
        nonce = os.urandom(_NONCE)
        sealed = _aead(key).encrypt(nonce, plaintext, key_id.encode())
        return f"{REGISTRY_SEALED}{key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str) -> bytes:
        key_id, _, encoded = sealed.removeprefix(REGISTRY_SEALED).partition(":")
        try:
            raw = base64.urlsafe_b64decode(encoded)
            return _aead(self._keyring.key(key_id)).decrypt(
                raw[:_NONCE], raw[_NONCE:], key_id.encode()
            )
        except (InvalidTag, ValueError):
            raise SealedWithAnotherKey(
                f"secret sealed with data key {key_id!r} does not open"
            ) from None


def _aead(data_key: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(data_key)
    return AESGCM(derived)
