"""`dockyard.core.digests`: which digests the registry accepts, and hashing."""

from __future__ import annotations

import hashlib

import pytest

from dockyard.common.errors import DigestInvalid
from dockyard.core.digests import (
    HEX_LENGTHS,
    algorithm_of,
    digest_bytes,
    hasher,
    is_digest,
    parse_digest,
)

EMPTY_SHA256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
EMPTY_SHA512 = (
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
)


@pytest.mark.parametrize(
    "digest",
    [
        EMPTY_SHA256,
        EMPTY_SHA512,
        "sha256:" + "0" * 64,
        "sha256:" + "0123456789abcdef" * 4,
        "sha512:" + "f" * 128,
    ],
)
def test_valid_digests_are_returned_unchanged(digest: str) -> None:
    assert parse_digest(digest) == digest


@pytest.mark.parametrize(
    "digest",
    [
        pytest.param("", id="empty"),
        pytest.param("sha256", id="no-colon"),
        pytest.param("sha256:", id="no-hex"),
        pytest.param(":" + "a" * 64, id="no-algorithm"),
        pytest.param("sha256:" + "a" * 63, id="short"),
        pytest.param("sha256:" + "a" * 65, id="long"),
        pytest.param("sha256:" + "a" * 128, id="sha512-length-for-sha256"),
        pytest.param("sha512:" + "a" * 64, id="sha256-length-for-sha512"),
        pytest.param("sha256:" + "A" * 64, id="uppercase-hex"),
        pytest.param("sha256:" + "aB" * 32, id="mixed-case-hex"),
        pytest.param("SHA256:" + "a" * 64, id="uppercase-algorithm"),
        pytest.param("sha256:" + "g" * 64, id="not-hex"),
        pytest.param("sha256:" + "a" * 62 + "-_", id="separators-in-hex"),
        pytest.param("sha256: " + "a" * 64, id="space"),
        pytest.param("sha256:" + "a" * 64 + "\n", id="trailing-newline"),
        pytest.param(" sha256:" + "a" * 64, id="leading-space"),
        pytest.param("sha256::" + "a" * 64, id="double-colon"),
        pytest.param("sha256:" + "a" * 64 + ":", id="trailing-colon"),
        pytest.param("md5:" + "a" * 32, id="md5"),
        pytest.param("sha384:" + "a" * 96, id="sha384"),
        pytest.param("blake3:" + "a" * 64, id="blake3"),
        pytest.param("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564", id="b64"),
    ],
)
def test_invalid_digests_raise_digest_invalid(digest: str) -> None:
    with pytest.raises(DigestInvalid) as caught:
        parse_digest(digest)
    assert caught.value.code == "DIGEST_INVALID"
    assert caught.value.detail == {"digest": digest}


def test_unknown_algorithm_is_named_in_the_message() -> None:
    with pytest.raises(DigestInvalid, match="unsupported digest algorithm: md5"):
        parse_digest("md5:" + "a" * 32)


def test_hex_lengths_match_the_hash_functions() -> None:
    for algorithm, length in HEX_LENGTHS.items():
        assert len(hashlib.new(algorithm).hexdigest()) == length


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (EMPTY_SHA256, True),
        ("sha256:abc", True),
        ("latest", False),
        ("v1.2.3", False),
        ("", False),
    ],
)
def test_is_digest(reference: str, expected: bool) -> None:
    assert is_digest(reference) is expected


def test_algorithm_of() -> None:
    assert algorithm_of(EMPTY_SHA256) == "sha256"
    assert algorithm_of(EMPTY_SHA512) == "sha512"


def test_digest_bytes() -> None:
    assert digest_bytes(b"") == EMPTY_SHA256
    assert digest_bytes(b"", "sha512") == EMPTY_SHA512
    assert digest_bytes(b"hello") == (
        "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    )
    assert parse_digest(digest_bytes(b"any bytes", "sha512")) is not None


def test_hasher_hashes_incrementally() -> None:
    h = hasher()
    assert h.name == "sha256"
    h.update(b"hel")
    h.update(b"lo")
    assert f"sha256:{h.hexdigest()}" == digest_bytes(b"hello")
    assert hasher("sha512").name == "sha512"
