"""Certificates of Notation signatures: the chain an envelope carries, checked up to a
root of a trust store, and the signer's identity (`x509.subject: ...`) a trust policy
trusts. The rules are the Notary Project's (signature specification, "Certificate
requirements"): issuers are CAs that may sign certificates, the leaf signs only, every
link verifies with its issuer's key."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from dockyard.signing.errors import SignatureInvalid

# The short names a trusted identity's distinguished name uses (RFC 4514's, and Notation's
# `S` for the state).
_NAMES = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
    "E": NameOID.EMAIL_ADDRESS,
    "EMAILADDRESS": NameOID.EMAIL_ADDRESS,
}


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, or the one of a DER file."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise SignatureInvalid(f"not a certificate: {exc}") from None


def pem(certificates: Iterable[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certificates)


def thumbprint(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class ChainCheck:
    """What a chain's check found: `trusted` when it ends in a root of the stores;
    `expired` names the certificates outside their validity at `now` (strict refuses
    them, permissive logs them)."""

    trusted: bool
    problem: str | None
    expired: tuple[str, ...]


def check_chain(
    chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate], now: datetime
) -> ChainCheck:
    """`chain` is leaf first, as `x5c` carries it. Trusted when every link verifies and
    the chain ends in one of `roots`, or in a certificate one of them issued."""
    if not chain:
        return ChainCheck(False, "the envelope carries no certificate", ())
    leaf = chain[0]
    problem = _leaf_problem(leaf)
    if problem is not None:
        return ChainCheck(False, problem, ())
    for child, issuer in itertools.pairwise(chain):
        if not _is_ca(issuer):
            return ChainCheck(False, f"{_subject(issuer)} is not a CA certificate", ())
        if not _issued_by(child, issuer):
            return ChainCheck(False, f"{_subject(child)} was not issued by {_subject(issuer)}", ())
    expired = tuple(
        _subject(c) for c in chain if not c.not_valid_before_utc <= now <= c.not_valid_after_utc
    )
    top = chain[-1]
    known = {thumbprint(root) for root in roots}
    if thumbprint(top) in known:
        return ChainCheck(True, None, expired)
    for root in roots:
        if _is_ca(root) and _issued_by(top, root):
            if not root.not_valid_before_utc <= now <= root.not_valid_after_utc:
                expired += (_subject(root),)
            return ChainCheck(True, None, expired)
    return ChainCheck(False, f"the chain of {_subject(leaf)} ends in no trusted root", expired)


def _leaf_problem(leaf: x509.Certificate) -> str | None:
    try:
        usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return f"{_subject(leaf)} has no keyUsage: a signing certificate needs digitalSignature"
    if not usage.digital_signature:
        return f"{_subject(leaf)} may not sign: its keyUsage lacks digitalSignature"
    if _is_ca(leaf):
        return f"{_subject(leaf)} is a CA certificate, not a signing certificate"
    return None


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    return constraints.value.ca


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _subject(certificate: x509.Certificate) -> str:
    return certificate.subject.rfc4514_string()


def parse_identity(text: str) -> dict[str, str]:
    """`x509.subject: C=US, ST=WA, O=acme-rockets.io, CN=Builder` -> its attributes by
    short name. Notation requires C, ST (or S) and O; commas, semicolons and
    backslashes in values are escaped with `\\`."""
    prefix, colon, dn = text.partition(":")
    if not colon or prefix.strip() != "x509.subject":
        raise ValueError(f"trusted identity {text!r} must start with 'x509.subject:'")
    attributes: dict[str, str] = {}
    for part in _split_unescaped(dn.strip()):
        key, equals, value = part.partition("=")
        key = key.strip().upper()
        if not equals or key not in _NAMES:
            raise ValueError(f"trusted identity {text!r}: {part.strip()!r} is not NAME=value")
        if key == "S":
            key = "ST"
        if key == "EMAILADDRESS":
            key = "E"
        if key in attributes:
            raise ValueError(f"trusted identity {text!r} names {key} twice")
        attributes[key] = _unescape(value.strip())
    missing = [name for name in ("C", "ST", "O") if name not in attributes]
    if missing:
        raise ValueError(f"trusted identity {text!r} lacks {', '.join(missing)}")
    return attributes


def _split_unescaped(text: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _unescape(value: str) -> str:
    out, escaped = [], False
    for char in value:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            out.append(char)
    return "".join(out)


def identity_matches(attributes: dict[str, str], certificate: x509.Certificate) -> bool:
    """Whether the certificate's subject holds every attribute of the trusted identity
    (Notation matches a subset of the subject)."""
    for key, value in attributes.items():
        found = [a.value for a in certificate.subject.get_attributes_for_oid(_NAMES[key])]
        if value not in found:
            return False
    return True
