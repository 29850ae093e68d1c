"""PKCS#11 URIs (RFC 7512) as key identifiers: what is accepted, how Dockyard spells
them, and that a refused one is never echoed with its query (which may hold a PIN)."""

from __future__ import annotations

import pytest

from dockyard.common.errors import RequestInvalid
from dockyard.encryption.pkcs11_uris import Pkcs11Uri, parse


def test_a_key_and_its_versions() -> None:
    key = parse("pkcs11:token=dockyard;object=kek")
    assert key == Pkcs11Uri("dockyard", "kek")
    assert str(key) == "pkcs11:token=dockyard;object=kek"
    version = key.with_id(b"\x01\xab")
    assert str(version) == "pkcs11:token=dockyard;object=kek;id=%01%AB"
    assert parse(str(version)) == version


def test_any_order_and_percent_encoding_parse_to_one_spelling() -> None:
    uri = parse("pkcs11:type=secret-key;id=%01;object=my%20kek;token=Dock%C3%BCyard")
    assert uri == Pkcs11Uri("Dock\u00fcyard", "my kek", b"\x01")
    assert str(uri) == "pkcs11:token=Dock%C3%BCyard;object=my%20kek;id=%01"
    assert str(Pkcs11Uri("a;b", "c/d?")) == "pkcs11:token=a%3Bb;object=c%2Fd%3F"


@pytest.mark.parametrize(
    "identifier",
    [
        "local:kek",
        "pkcs11:",
        "pkcs11:token=dockyard",
        "pkcs11:object=kek",
        "pkcs11:token=dockyard;object=",
        "pkcs11:token=dockyard;object=kek;id=",
        "pkcs11:token=dockyard;object=kek;object=other",
        "pkcs11:token=dockyard;object=kek;type=private",
        "pkcs11:token=dockyard;object=kek;serial=42",
        "pkcs11:token=dockyard;object=k ek",
        "pkcs11:token=dockyard;object=%ff",
        "pkcs11:token=dockyard;object=kek;id=%0",
    ],
)
def test_what_names_no_secret_key_is_refused(identifier: str) -> None:
    with pytest.raises(RequestInvalid):
        parse(identifier)


def test_a_pin_in_the_query_is_refused_and_never_repeated() -> None:
    with pytest.raises(RequestInvalid, match="query attributes") as caught:
        parse("pkcs11:token=dockyard;object=kek?pin-value=secret-1234")
    assert "secret-1234" not in caught.value.message
    assert "pkcs11:token=dockyard;object=kek" in caught.value.message
