"""Notation's JWS envelope (`application/jose+json`, the Notary Project's
`signature-envelope-jws.md`): read and checked for integrity (`parse_jws`), and made
(`make_jws`, for `dockyard sign`) as notation makes it: the flattened JSON
serialization, exactly `payload`, `protected`, `header` and `signature`.

Integrity here is the envelope's own: the protected header's rules, the signature over
`protected.payload` with the leaf certificate's key, and the payload's target. Whether
the certificate is trusted is `certificates.check_chain`'s, under a trust policy."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dockyard.signing import algorithms
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.media_types import NOTATION_PAYLOAD

SIGNING_SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
AUTHENTIC_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
SIGNING_AGENT = "io.cncf.notary.signingAgent"
_PLUGIN = "io.cncf.notary.verificationPlugin"
_PLUGIN_MIN_VERSION = "io.cncf.notary.verificationPluginMinVersion"
# Protected keys a verifier understands; one listed in `crit` beyond these fails.
_KNOWN_CRITICAL = frozenset({SIGNING_SCHEME, AUTHENTIC_SIGNING_TIME, EXPIRY})
_SCHEMES = frozenset({"notary.x509", "notary.x509.signingAuthority"})
_ENVELOPE_KEYS = frozenset({"payload", "protected", "header", "signature"})


@dataclass(frozen=True)
class Target:
    """The descriptor a Notation payload signs: what it must equal."""

    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class NotationSignature:
    """An envelope whose signature verified with its own leaf certificate's key."""

    target: Target
    certificates: tuple[x509.Certificate, ...]  # leaf first
    signing_scheme: str
    signing_time: datetime | None
    expiry: datetime | None


def _b64url(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise SignatureInvalid(f"the envelope's {what} is not a string")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SignatureInvalid(f"the envelope's {what} is not base64url") from None


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _time(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise SignatureInvalid(f"{what} is not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureInvalid(f"{what} {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise SignatureInvalid(f"{what} {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _json_object(data: bytes, what: str) -> dict:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise SignatureInvalid(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise SignatureInvalid(f"the {what} is not a JSON object")
    return value


def parse_target(payload: bytes) -> Target:
    """The payload's `targetArtifact`, which must carry mediaType, digest and size."""
    target = _json_object(payload, "payload").get("targetArtifact")
    if not isinstance(target, dict):
        raise SignatureInvalid("the payload has no targetArtifact")
    media_type, digest, size = target.get("mediaType"), target.get("digest"), target.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str):
        raise SignatureInvalid("the payload's targetArtifact lacks mediaType or digest")
    if not isinstance(size, int) or isinstance(size, bool):
        raise SignatureInvalid("the payload's targetArtifact lacks its size")
    return Target(media_type, digest, size)


def check_protected(protected: dict) -> tuple[str, datetime | None, datetime | None]:
    """The rules of Notation's protected header (shared by JWS and COSE once decoded):
    the signing scheme, its times and `crit`. Returns (scheme, signing time, expiry)."""
    scheme = protected.get(SIGNING_SCHEME)
    if scheme not in _SCHEMES:
        raise SignatureInvalid(f"the signing scheme {scheme!r} is not notary.x509")
    crit = protected.get("crit")
    if not isinstance(crit, list) or SIGNING_SCHEME not in crit:
        raise SignatureInvalid("crit must list io.cncf.notary.signingScheme")
    unknown = [
        c for c in crit if c not in _KNOWN_CRITICAL and c not in (_PLUGIN, _PLUGIN_MIN_VERSION)
    ]
    if unknown:
        raise SignatureInvalid(f"unknown critical header {unknown[0]!r}")
    for key in (EXPIRY, AUTHENTIC_SIGNING_TIME, _PLUGIN, _PLUGIN_MIN_VERSION):
        if key in protected and key not in crit:
            raise SignatureInvalid(f"{key} must be listed in crit")
    if _PLUGIN in protected:
        raise SignatureInvalid("the signature needs a verification plugin, which Dockyard has not")
    if scheme == "notary.x509":
        signing_time = _time(protected.get(SIGNING_TIME), SIGNING_TIME)
    else:
        signing_time = _time(protected.get(AUTHENTIC_SIGNING_TIME), AUTHENTIC_SIGNING_TIME)
    expiry = _time(protected[EXPIRY], EXPIRY) if EXPIRY in protected else None
    return scheme, signing_time, expiry


def parse_jws(envelope: bytes) -> NotationSignature:
    """Read a JWS envelope and verify its signature with the leaf certificate it
    carries; `SignatureInvalid` says what is wrong."""
    doc = _json_object(envelope, "JWS envelope")
    if set(doc) != _ENVELOPE_KEYS:
        raise SignatureInvalid("a JWS envelope has exactly payload, protected, header, signature")
    protected_text, payload_text = doc["protected"], doc["payload"]
    protected = _json_object(_b64url(protected_text, "protected header"), "protected header")
    payload = _b64url(payload_text, "payload")
    signature = _b64url(doc["signature"], "signature")
    header = doc["header"]
    if not isinstance(header, dict):
        raise SignatureInvalid("the envelope's header is not an object")
    if protected.get("cty") != NOTATION_PAYLOAD:
        raise SignatureInvalid(f"the content type is not {NOTATION_PAYLOAD}")
    algorithm = algorithms.ALGORITHMS.get(protected.get("alg"))  # type: ignore[arg-type]
    if algorithm is None:
        raise SignatureInvalid(f"the algorithm {protected.get('alg')!r} is not one Notation allows")
    scheme, signing_time, expiry = check_protected(protected)
    chain = certificates_of(header.get("x5c"))
    algorithms.verify(
        algorithm,
        chain[0].public_key(),  # type: ignore[arg-type]
        signature,
        f"{protected_text}.{payload_text}".encode(),
    )
    return NotationSignature(parse_target(payload), chain, scheme, signing_time, expiry)


def certificates_of(x5c: object) -> tuple[x509.Certificate, ...]:
    """`x5c`: standard base64 DER certificates, leaf first."""
    if not isinstance(x5c, list) or not x5c:
        raise SignatureInvalid("the envelope carries no certificate chain (x5c)")
    chain = []
    for entry in x5c:
        try:
            der = entry if isinstance(entry, bytes) else base64.b64decode(entry, validate=True)
            chain.append(x509.load_der_x509_certificate(der))
        except (binascii.Error, ValueError, TypeError):
            raise SignatureInvalid("a certificate of the chain is not base64 DER") from None
    return tuple(chain)


def payload_for(target: Target) -> bytes:
    return orjson.dumps(
        {
            "targetArtifact": {
                "mediaType": target.media_type,
                "digest": target.digest,
                "size": target.size,
            }
        }
    )


def make_jws(
    target: Target,
    key: algorithms.PrivateKey,
    chain: Sequence[x509.Certificate],
    signing_time: datetime,
    expiry: datetime | None = None,
    agent: str = "dockyard",
) -> bytes:
    """A Notation JWS envelope over `target`, signed with `key` (its certificate first
    in `chain`), as notation's `sign --signature-format jws` writes it."""
    algorithm = algorithms.algorithm_for(key)
    crit = [SIGNING_SCHEME]
    protected: dict[str, object] = {
        "alg": algorithm.name,
        "cty": NOTATION_PAYLOAD,
        SIGNING_SCHEME: "notary.x509",
        SIGNING_TIME: signing_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if expiry is not None:
        protected[EXPIRY] = expiry.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        crit.append(EXPIRY)
    protected["crit"] = crit
    protected_text = _encode(orjson.dumps(protected))
    payload_text = _encode(payload_for(target))
    signature = algorithms.sign(algorithm, key, f"{protected_text}.{payload_text}".encode())
    der = serialization.Encoding.DER
    return orjson.dumps(
        {
            "payload": payload_text,
            "protected": protected_text,
            "header": {
                "x5c": [base64.b64encode(c.public_bytes(der)).decode() for c in chain],
                SIGNING_AGENT: agent,
            },
            "signature": _encode(signature),
        }
    )
