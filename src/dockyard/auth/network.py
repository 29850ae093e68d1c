"""Network rules, as ACR's firewall has them: who may reach a registry at all.

A registry has public network access on or off, a default action (Allow or Deny) and up to
200 IP/CIDR allow rules (IPv4 and IPv6). Public access off refuses everyone, whatever the
rules; default Allow admits everyone, and the rules only matter under Deny.

Also here: which address a request comes from when reverse proxies stand in front
(X-Forwarded-For is believed only from proxies the operator trusts, since anyone can send
the header). Pure functions on plain values: never reads a request, a setting or a table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from enum import StrEnum

from dockyard.metadata.network import Network, NetworkPolicy

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_RULES = 200  # ACR's limit of IP rules per registry


class DefaultAction(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


def refusal(policy: NetworkPolicy | None, registry: str, client: str | None) -> str | None:
    """None if `client` may reach the registry (`policy` None: nothing restricted), else
    the message to refuse it with: it names the address and how an administrator lets it
    in."""
    if policy is None or (
        policy.public_network_access and policy.default_action == DefaultAction.ALLOW
    ):
        return None
    shown = client or "an unknown address"
    if not policy.public_network_access:
        return (
            f"client address {shown} is not allowed: public network access to registry "
            f"{registry!r} is disabled (an administrator can enable it with `dockyard registry "
            f"update -n {registry} --public-network-enabled true`)"
        )
    address = parse_address(client) if client else None
    if address is not None and any(address in network for network in policy.allowed):
        return None
    fix = (
        f"`dockyard network-rule add -n {registry} --ip-address {client}`"
        if address is not None
        else f"`dockyard network-rule add -n {registry} --ip-address CIDR`"
    )
    return (
        f"client address {shown} is not allowed by the network rules of registry "
        f"{registry!r} (default action Deny); an administrator can allow it with {fix}"
    )


def parse_rule(text: str) -> Network:
    """An allow rule: one address (`203.0.113.7`, `2001:db8::1`) or a CIDR block
    (`203.0.113.0/24`). Host bits under the prefix are refused rather than silently
    dropped, since `10.0.0.5/24` is usually a typo for something narrower."""
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        try:
            wider = ipaddress.ip_network(text.strip(), strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR block") from exc
        raise ValueError(f"{text!r} has host bits set; did you mean {wider}?") from exc


def rule_text(network: Network) -> str:
    """The canonical form rules are stored and shown in: a bare address for a single
    host (as ACR shows them), CIDR otherwise."""
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def parse_address(text: str) -> Address | None:
    """An address as a client or proxy writes it: bare, `v4:port`, `[v6]` or `[v6]:port`.
    IPv4-mapped IPv6 (`::ffff:192.0.2.1`, what a dual-stack socket reports for IPv4
    peers) becomes the IPv4 address, so IPv4 rules match it. None if unparsable."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted_proxies: tuple[Network, ...]
) -> str | None:
    """The address a request really comes from.

    Without trusted proxies, or when the direct peer is not one of them, it is the peer:
    X-Forwarded-For is then ignored, because the client wrote it. When the peer is a
    trusted proxy, the X-Forwarded-For chain (all header values, in order) is read from
    the right, each hop having been appended by the one after it; the first address that
    is not itself a trusted proxy is the client. If every hop is a trusted proxy, the
    left-most is the client. An unparsable hop ends the trust: the client is unknown
    (None), which a Deny policy refuses, rather than a guess an attacker could steer.
    """
    if peer is None:
        return None
    if not trusted_proxies:
        return _unmapped(peer)
    peer_address = parse_address(peer)
    if peer_address is None or not _within(peer_address, trusted_proxies):
        return _unmapped(peer)
    hops = [hop for value in forwarded_for for hop in value.split(",") if hop.strip()]
    client = str(peer_address)
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:
            return None
        client = str(address)
        if not _within(address, trusted_proxies):
            break
    return client


def forwarded_scheme(
    peer: str | None, forwarded_proto: str | None, trusted_proxies: tuple[Network, ...]
) -> str | None:
    """The scheme the client used, as a trusted proxy reports it in X-Forwarded-Proto: a
    proxy that terminates TLS talks plain HTTP to the node, yet the token realm and the
    upload locations the node writes must say https. None (keep the connection's own)
    when the peer is not a trusted proxy or the value is not one hop of http or https;
    of several hops, the left-most is what the client used."""
    if peer is None or not forwarded_proto or not trusted_proxies:
        return None
    peer_address = parse_address(peer)
    if peer_address is None or not _within(peer_address, trusted_proxies):
        return None
    scheme = forwarded_proto.split(",")[0].strip().lower()
    return scheme if scheme in ("http", "https") else None


def _unmapped(peer: str) -> str:
    """The peer as an IPv4 address if a dual-stack socket reported it IPv4-mapped; the
    prefix test keeps this off the per-request path for everyone else."""
    if peer.startswith("::ffff:"):
        return str(parse_address(peer) or peer)
    return peer


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address in network for network in networks)
