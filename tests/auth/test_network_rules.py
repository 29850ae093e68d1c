"""`auth/network.py`: who a registry's firewall admits, rule syntax, and which address a
request comes from behind proxies."""

from __future__ import annotations

import ipaddress

import pytest

from dockyard.auth.network import (
    DefaultAction,
    client_address,
    parse_address,
    parse_rule,
    refusal,
    rule_text,
)
from dockyard.metadata.network import NetworkPolicy

V4 = ipaddress.ip_network("203.0.113.0/24")
V6 = ipaddress.ip_network("2001:db8::/32")
HOST = ipaddress.ip_network("198.51.100.7/32")
DENY = NetworkPolicy(True, DefaultAction.DENY, (V4, V6, HOST))
TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


# -- refusal ---------------------------------------------------------------------------


def test_no_policy_and_default_allow_admit_everyone() -> None:
    assert refusal(None, "contoso", "192.0.2.1") is None
    allow_with_rules = NetworkPolicy(True, DefaultAction.ALLOW, (V4,))
    assert refusal(allow_with_rules, "contoso", "192.0.2.1") is None  # rules only matter on Deny
    assert refusal(allow_with_rules, "contoso", None) is None


@pytest.mark.parametrize(
    "client", ["203.0.113.1", "203.0.113.255", "2001:db8::1", "198.51.100.7", "::ffff:203.0.113.9"]
)
def test_deny_admits_addresses_inside_a_rule(client: str) -> None:
    assert refusal(DENY, "contoso", client) is None


@pytest.mark.parametrize("client", ["203.0.114.1", "198.51.100.8", "2001:db9::1", "127.0.0.1"])
def test_deny_refuses_others_naming_the_address_and_the_fix(client: str) -> None:
    message = refusal(DENY, "contoso", client)
    assert message is not None
    assert f"client address {client} is not allowed" in message
    assert "default action Deny" in message
    assert f"dockyard network-rule add -n contoso --ip-address {client}" in message


def test_deny_refuses_an_unknown_address() -> None:
    message = refusal(DENY, "contoso", None)
    assert message is not None
    assert "an unknown address" in message
    assert "-n contoso --ip-address CIDR" in message


def test_public_access_off_refuses_even_addresses_a_rule_allows() -> None:
    for action in DefaultAction:
        policy = NetworkPolicy(False, action, (V4,))
        message = refusal(policy, "contoso", "203.0.113.1")
        assert message is not None
        assert "client address 203.0.113.1" in message
        assert "public network access to registry 'contoso' is disabled" in message
        assert "--public-network-enabled true" in message


# -- rules -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7/32", "203.0.113.7"),
        (" 203.0.113.0/24 ", "203.0.113.0/24"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("2001:DB8::1", "2001:db8::1"),
        ("2001:db8::/32", "2001:db8::/32"),
    ],
)
def test_rules_parse_to_a_canonical_form(text: str, canonical: str) -> None:
    assert rule_text(parse_rule(text)) == canonical


def test_host_bits_are_refused_with_the_likely_meaning() -> None:
    with pytest.raises(ValueError, match=r"host bits set; did you mean 10\.0\.0\.0/24\?"):
        parse_rule("10.0.0.5/24")


@pytest.mark.parametrize("text", ["", "example.com", "10.0.0.0/33", "300.1.1.1", "10.0.0.0/8/8"])
def test_not_an_address_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or CIDR block"):
        parse_rule(text)


# -- addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:8443", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        ("unknown", None),
        ("", None),
        ("_hidden", None),
    ],
)
def test_addresses_as_clients_and_proxies_write_them(text: str, expected: str | None) -> None:
    parsed = parse_address(text)
    assert (str(parsed) if parsed else None) == expected


def test_without_trusted_proxies_the_peer_is_the_client_whatever_it_claims() -> None:
    assert client_address("192.0.2.1", ["198.51.100.1"], ()) == "192.0.2.1"
    assert client_address("::ffff:192.0.2.1", [], ()) == "192.0.2.1"
    assert client_address(None, [], ()) is None


def test_a_peer_that_is_not_a_trusted_proxy_cannot_forge_its_address() -> None:
    assert client_address("192.0.2.1", ["203.0.113.1"], TRUSTED) == "192.0.2.1"


def test_a_trusted_proxy_is_believed_and_the_right_most_untrusted_hop_wins() -> None:
    # The client claims 203.0.113.66 in its own header; the proxy appended what it saw.
    chain = ["203.0.113.66, 198.51.100.5", "10.1.1.1"]
    assert client_address("10.0.0.2", chain, TRUSTED) == "198.51.100.5"
    assert client_address("10.0.0.2", ["2001:db8::5"], TRUSTED) == "2001:db8::5"
    assert client_address("fd00::1", ["[2001:db8::5]:1234, fd00::2"], TRUSTED) == "2001:db8::5"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert client_address("10.0.0.2", ["10.9.9.9, 10.1.1.1"], TRUSTED) == "10.9.9.9"
    assert client_address("10.0.0.2", [], TRUSTED) == "10.0.0.2"
    assert client_address("10.0.0.2", [" , "], TRUSTED) == "10.0.0.2"


def test_an_unparsable_hop_makes_the_client_unknown() -> None:
    assert client_address("10.0.0.2", ["198.51.100.5, garbage"], TRUSTED) is None
    # ...but only where trust reaches: a bad hop left of the client does not matter.
    assert client_address("10.0.0.2", ["garbage, 198.51.100.5"], TRUSTED) == "198.51.100.5"
