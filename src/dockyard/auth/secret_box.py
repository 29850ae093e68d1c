"""Encryption for secrets the server must read back (the admin user's passwords, token
signing keys), with a key kept outside the database: a database dump alone reveals none."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SealedWithAnotherKey(ValueError):
    """The secret was sealed with another key file: another node's, or a lost one."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_file(cls, path: Path) -> SecretBox:
        """The key in `path`, made (readable by the owner only) on first use."""
        if not path.exists():
            store_key(path, Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, sealed: str) -> str:
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
