"""Secrets that only need checking (identity secrets, token passwords) are stored as
argon2 hashes; new passwords are random and long."""

from __future__ import annotations

import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()


def new_password() -> str:
    """32 URL-safe characters (192 bits), as long as ACR's generated passwords, never
    starting with `-`: command lines (`az login -p`, `docker login -p`) take such a
    password for an option."""
    while (password := secrets.token_urlsafe(24)).startswith("-"):
        pass
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(hashed: str, password: str) -> bool:
    try:
        return _HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def spend_verification(password: str) -> None:
    """Verify `password` against a hash that nothing matches: a login that found no
    secret to check (an unknown name) then takes as long as a wrong secret does, so the
    time taken does not tell which names exist."""
    password_matches(_unmatchable_hash(), password)


@functools.cache
def _unmatchable_hash() -> str:
    """Made once, on first need, with the hasher's parameters."""
    return _HASHER.hash(new_password())
