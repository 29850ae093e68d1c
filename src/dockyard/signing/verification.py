"""Verifying a manifest's signatures under one trust policy statement, and the verdict
its level gives (Notation's table): strict enforces integrity, authenticity (a chain to
a root of the statement's stores and a trusted identity, or a trusted cosign key) and
expiry; permissive logs expiry instead; audit enforces nothing at pull and logs what
failed; skip checks nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from dockyard.signing import cosign
from dockyard.signing.algorithms import PublicKey
from dockyard.signing.certificates import check_chain, identity_matches, load_certificates
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.notation import Target
from dockyard.signing.signatures import FoundSignature
from dockyard.signing.trust_policy import Statement


@dataclass(frozen=True)
class TrustMaterial:
    """A registry's trust stores, parsed: CA certificates by (type, name), public keys
    by ("cosign", name)."""

    certificates: dict[tuple[str, str], tuple[x509.Certificate, ...]] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[PublicKey, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, stores: Sequence[tuple[str, str, str]]) -> TrustMaterial:
        """From (type, name, PEM) rows; a store that no longer parses trusts nothing."""
        certificates: dict[tuple[str, str], tuple[x509.Certificate, ...]] = {}
        keys: dict[tuple[str, str], tuple[PublicKey, ...]] = {}
        for kind, name, material in stores:
            try:
                if kind == "cosign":
                    keys[(kind, name)] = tuple(cosign.load_public_keys(material.encode()))
                else:
                    certificates[(kind, name)] = tuple(load_certificates(material.encode()))
            except SignatureInvalid:
                continue
        return cls(certificates, keys)

    def roots(self, statement: Statement, kind: str) -> list[x509.Certificate]:
        return [
            c for s in statement.trust_stores if s[0] == kind for c in self.certificates.get(s, ())
        ]

    def public_keys(self, statement: Statement) -> list[PublicKey]:
        return [k for s in statement.trust_stores if s[0] == "cosign" for k in self.keys.get(s, ())]


@dataclass(frozen=True)
class SignatureCheck:
    """One signature under a statement: None where a check passed, else why not."""

    kind: str
    source: str
    signer: str | None
    integrity: str | None
    authenticity: str | None
    expired: tuple[str, ...] = ()
    # When this check's answer may change by time alone (a certificate or the
    # signature expires): a verdict kept past it is worked out again.
    valid_until: datetime | None = None

    def describe(self) -> str:
        who = f" by {self.signer}" if self.signer else ""
        problem = self.integrity or self.authenticity
        if problem:
            return f"{self.kind} signature {self.source}{who}: {problem}"
        if self.expired:
            return f"{self.kind} signature {self.source}{who}: expired ({', '.join(self.expired)})"
        return f"{self.kind} signature {self.source}{who} verifies"


def check_signature(
    found: FoundSignature,
    target: Target,
    statement: Statement,
    material: TrustMaterial,
    now: datetime,
) -> SignatureCheck:
    if found.problem is not None:
        return SignatureCheck(found.kind, found.source, None, found.problem, None)
    if found.cosign is not None:
        return _check_cosign(found, found.cosign, target, statement, material)
    assert found.notation is not None
    signed = found.notation
    leaf = signed.certificates[0]
    signer = leaf.subject.rfc4514_string()
    if signed.target != target:
        return SignatureCheck(
            found.kind, found.source, signer, "the signature's payload names another artifact", None
        )
    kind = "signingAuthority" if signed.signing_scheme.endswith("signingAuthority") else "ca"
    chain = check_chain(signed.certificates, material.roots(statement, kind), now)
    expired = chain.expired
    if signed.expiry is not None and signed.expiry < now:
        expired += ("the signature",)
    ends = [c.not_valid_after_utc for c in signed.certificates]
    if signed.expiry is not None:
        ends.append(signed.expiry)
    # Only an end still to come can change the answer (one passed already counts).
    valid_until = min((end for end in ends if end > now), default=None)
    if not chain.trusted:
        return SignatureCheck(
            found.kind, found.source, signer, None, chain.problem, expired, valid_until
        )
    identities = statement.trusted_identities
    if identities is not None and not any(identity_matches(i, leaf) for i in identities):
        return SignatureCheck(
            found.kind,
            found.source,
            signer,
            None,
            f"{signer} is not a trusted identity of policy {statement.name!r}",
            expired,
            valid_until,
        )
    return SignatureCheck(found.kind, found.source, signer, None, None, expired, valid_until)


def _check_cosign(
    found: FoundSignature,
    signature: cosign.CosignSignature,
    target: Target,
    statement: Statement,
    material: TrustMaterial,
) -> SignatureCheck:
    try:
        if cosign.signed_digest(signature.payload) != target.digest:
            return SignatureCheck(
                found.kind, found.source, None, "the cosign payload signs another digest", None
            )
        key = cosign.verify(signature, target.digest, material.public_keys(statement))
    except SignatureInvalid as exc:
        return SignatureCheck(found.kind, found.source, None, None, str(exc))
    return SignatureCheck(found.kind, found.source, f"cosign key {key}", None, None)


@dataclass(frozen=True)
class Verdict:
    """What a statement's level makes of a manifest's signatures: `allowed` (the pull
    goes through), `reason` (one line: why refused, or who signed), `logged` (what the
    level logs rather than enforces)."""

    allowed: bool
    reason: str
    logged: tuple[str, ...] = ()
    valid_until: datetime | None = None


def judge(checks: Sequence[SignatureCheck], statement: Statement) -> Verdict:
    level = statement.level
    if level == "skip":
        return Verdict(True, "verification skipped")
    authentic = [c for c in checks if c.integrity is None and c.authenticity is None]
    valid_until = min((c.valid_until for c in checks if c.valid_until), default=None)
    fresh = [c for c in authentic if not c.expired]
    if level == "strict" and fresh:
        return Verdict(True, fresh[0].describe(), (), valid_until)
    if level in ("permissive", "audit") and authentic:
        logged = () if fresh else (authentic[0].describe(),)
        return Verdict(True, (fresh or authentic)[0].describe(), logged, valid_until)
    reason = "the image has no signature" if not checks else "; ".join(c.describe() for c in checks)
    if level == "audit":
        return Verdict(True, reason, (reason,), valid_until)
    return Verdict(False, reason, (), valid_until)
