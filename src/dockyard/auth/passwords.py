"""Secrets that only need checking (identity secrets, token passwords) are stored as
argon2 hashes; new passwords are random and long."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


def new_password() -> str:
    """32 URL-safe characters (192 bits), as long as ACR's generated passwords."""
    return secrets.token_urlsafe(24)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
