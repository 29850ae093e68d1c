"""Encryption for secrets the server must read back (the admin user's passwords, token
signing keys), with a key kept outside the database: a database dump alone reveals none.

A registry's own secrets (its admin passwords, credential sets, webhook addresses and
headers) go under the registry's encryption keys instead once its encryption is on
(`use_registry_keys`, which the encryption feature calls): sealed values then start
with `REGISTRY_SEALED`, and revoking the registry's key makes them unreadable too."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken

# The start of a value sealed with a registry's data key (`RegistrySealer`).
REGISTRY_SEALED = "dk1:"


class SealedWithAnotherKey(ValueError):
    """The secret was sealed with another key file: another node's, or a lost one."""


class RegistrySealer(Protocol):
    """Seals a registry's secrets with its current data key; opens what any of its data
    keys sealed."""

    def seal(self, plaintext: bytes) -> str: ...
    def open(self, sealed: str) -> bytes: ...


def _no_registry_keys(registry_id: int) -> RegistrySealer | None:
    return None


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        self._sealer_for: Callable[[int], RegistrySealer | None] = _no_registry_keys
        self._opener_for: Callable[[int], RegistrySealer | None] = _no_registry_keys

    def use_registry_keys(
        self,
        sealer_for: Callable[[int], RegistrySealer | None],
        opener_for: Callable[[int], RegistrySealer | None],
    ) -> None:
        """`sealer_for(registry_id)`: the sealer of an encrypted registry, else None (from
        memory: it is asked on every seal of a registry's secret). `opener_for`: what
        opens a value a registry's keys sealed, whether or not this process has noticed
        yet that the registry's encryption is on (another node sealed it)."""
        self._sealer_for = sealer_for
        self._opener_for = opener_for

    def needs_resealing(self, sealed: str, registry_id: int) -> bool:
        """Whether a registry's secret is sealed with the server's key although the
        registry's own keys should seal it."""
        return not sealed.startswith(REGISTRY_SEALED) and self._sealer_for(registry_id) is not None

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """The key in `path`, made (readable by the owner only) on first use."""
        if not path.exists():
            store_key(path, Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str, registry_id: int | None = None) -> str:
        """`registry_id`: the registry the secret belongs to (its keys seal it if its
        encryption is on); None for the server's own secrets."""
        sealer = None if registry_id is None else self._sealer_for(registry_id)
        if sealer is not None:
            return sealer.seal(plaintext.encode())
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str, registry_id: int | None = None) -> str:
        if sealed.startswith(REGISTRY_SEALED):
            sealer = None if registry_id is None else self._opener_for(registry_id)
            if sealer is None:
                raise SealedWithAnotherKey("secret is sealed with a registry's encryption key")
            return sealer.open(sealed).decode()
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SealedWithAnotherKey(
                "secret cannot be decrypted with this server's key"
            ) from None


def store_key(path: Path, key: bytes) -> None:
    """Write `key` to `path`, readable by the owner only, unless a key is there already
    (one another process made first is kept: it may have sealed secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(draft, path)  # atomic, and never replaces a key another made
    except FileExistsError:
        pass
    finally:
        draft.unlink()
