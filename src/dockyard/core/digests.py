"""Content digests (`algorithm:hex`): parsing, validation and hashing while bytes arrive."""

from __future__ import annotations

import hashlib
import re

from dockyard.common.errors import DigestInvalid

# Algorithms the registry can verify, with the length of their hex encoding.
HEX_LENGTHS = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


def parse_digest(value: str) -> str:
    """Return `value` if it is a digest this registry can verify, else raise DigestInvalid."""
    if not _DIGEST.fullmatch(value):
        raise DigestInvalid(f"invalid digest: {value!r}", detail={"digest": value})
    algorithm, _, encoded = value.partition(":")
    length = HEX_LENGTHS.get(algorithm)
    if length is None:
        raise DigestInvalid(f"unsupported digest algorithm: {algorithm}", detail={"digest": value})
    if len(encoded) != length or not all(c in "0123456789abcdef" for c in encoded):
        raise DigestInvalid(f"invalid {algorithm} digest: {value!r}", detail={"digest": value})
    return value


def is_digest(reference: str) -> bool:
    """A manifest reference is a digest when it has a colon; tags never do."""
    return ":" in reference


def algorithm_of(digest: str) -> str:
    return digest.partition(":")[0]


def hasher(algorithm: str = "sha256") -> hashlib._Hash:
    return hashlib.new(algorithm)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
