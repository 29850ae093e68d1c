"""Notation's COSE envelope (`application/cose`, the Notary Project's
`signature-envelope-cose.md`), read (`parse_cose`) and made (`make_cose`, for `dockyard
sign --signature-format cose`): a `COSE_Sign1_Tagged` (CBOR tag 18) whose protected
header carries the algorithm (label 1), `crit` (2), the payload's content type (3) and
Notation's text labels, its times as CBOR tag 1 epoch values; the chain in `x5chain`
(label 33, unprotected or protected). Read into the same `NotationSignature` as the JWS
envelope, after the signature over `["Signature1", protected, h'', payload]` verifies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dockyard.signing import algorithms
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.media_types import NOTATION_PAYLOAD
from dockyard.signing.notation import (
    EXPIRY,
    SIGNING_AGENT,
    SIGNING_SCHEME,
    SIGNING_TIME,
    NotationSignature,
    Target,
    certificates_of,
    check_protected,
    parse_target,
    payload_for,
)

_SIGN1_TAG = 18
_ALG, _CRIT, _CONTENT_TYPE, _X5CHAIN = 1, 2, 3, 33


def _loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError):
        raise SignatureInvalid(f"the {what} is not CBOR") from None


def _text_times(protected: Mapping) -> dict:
    """The protected header with its CBOR times as RFC 3339 text, as `check_protected`
    reads them."""
    readable = {}
    for key, value in protected.items():
        if isinstance(value, datetime):
            value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        readable[key] = value
    return readable


def parse_cose(envelope: bytes) -> NotationSignature:
    message = _loads(envelope, "COSE envelope")
    if not isinstance(message, cbor2.CBORTag) or message.tag != _SIGN1_TAG:
        raise SignatureInvalid("the envelope is not a tagged COSE_Sign1")
    parts = message.value  # inside a tag, cbor2 decodes immutable: a tuple, frozendicts
    if not isinstance(parts, list | tuple) or len(parts) != 4:
        raise SignatureInvalid("a COSE_Sign1 has four parts")
    protected_bytes, unprotected, payload, signature = parts
    if not all(isinstance(p, bytes) for p in (protected_bytes, payload, signature)):
        raise SignatureInvalid("a COSE_Sign1's protected header, payload and signature are bytes")
    if not isinstance(unprotected, Mapping):
        raise SignatureInvalid("a COSE_Sign1's unprotected header is a map")
    protected = _loads(protected_bytes, "protected header")
    if not isinstance(protected, Mapping):
        raise SignatureInvalid("the protected header is not a map")
    if protected.get(_CONTENT_TYPE) != NOTATION_PAYLOAD:
        raise SignatureInvalid(f"the content type is not {NOTATION_PAYLOAD}")
    algorithm = algorithms.BY_COSE.get(protected.get(_ALG))  # type: ignore[arg-type]
    if algorithm is None:
        raise SignatureInvalid(f"the algorithm {protected.get(_ALG)!r} is not one Notation allows")
    header = _text_times({k: v for k, v in protected.items() if isinstance(k, str)})
    header["crit"] = protected.get(_CRIT)
    scheme, signing_time, expiry = check_protected(header)
    chain_entry = unprotected.get(_X5CHAIN, protected.get(_X5CHAIN))
    if isinstance(chain_entry, bytes):
        chain_entry = [chain_entry]
    chain = certificates_of(list(chain_entry) if isinstance(chain_entry, tuple) else chain_entry)
    to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    algorithms.verify(algorithm, chain[0].public_key(), signature, to_be_signed)  # type: ignore[arg-type]
    return NotationSignature(parse_target(payload), chain, scheme, signing_time, expiry)


def make_cose(
    target: Target,
    key: algorithms.PrivateKey,
    chain: Sequence[x509.Certificate],
    signing_time: datetime,
    expiry: datetime | None = None,
    agent: str = "dockyard",
) -> bytes:
    """A Notation COSE envelope over `target`, as notation's `sign --signature-format
    cose` writes it: times as CBOR tag 1, the chain in the unprotected `x5chain`."""
    algorithm = algorithms.algorithm_for(key)
    crit = [SIGNING_SCHEME]
    protected: dict[object, object] = {
        _ALG: algorithm.cose,
        _CONTENT_TYPE: NOTATION_PAYLOAD,
        SIGNING_SCHEME: "notary.x509",
        SIGNING_TIME: cbor2.CBORTag(1, int(signing_time.timestamp())),
    }
    if expiry is not None:
        protected[EXPIRY] = cbor2.CBORTag(1, int(expiry.timestamp()))
        crit.append(EXPIRY)
    protected[_CRIT] = crit
    protected_bytes = cbor2.dumps(protected)
    payload = payload_for(target)
    to_be_signed = cbor2.dumps(["Signature1", protected_bytes, b"", payload])
    signature = algorithms.sign(algorithm, key, to_be_signed)
    der = serialization.Encoding.DER
    unprotected = {_X5CHAIN: [c.public_bytes(der) for c in chain], SIGNING_AGENT: agent}
    return cbor2.dumps(
        cbor2.CBORTag(_SIGN1_TAG, [protected_bytes, unprotected, payload, signature])
    )
