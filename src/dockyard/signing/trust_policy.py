"""A registry's trust policy document: Notation's `trustpolicy.oci.json` read with
repository patterns for scopes, and the trust stores it names.

A scope is a repository of the registry (`team/app`, or fully qualified
`<login server>/team/app`), a pattern of them (`team/*`, shell-style), or `*`. A
repository takes the statement of its exact scope, else of the most specific pattern
(the longest text before the first wildcard), else of `*`; a repository no scope names
is not checked. Trust stores are `ca:NAME` and `signingAuthority:NAME` (CA certificates,
Notation's) and `cosign:NAME` (public keys; Dockyard's, for cosign's key pairs)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.signing.certificates import parse_identity
from dockyard.signing.errors import TrustPolicyInvalid

LEVELS = ("strict", "permissive", "audit", "skip")
STORE_TYPES = ("ca", "signingAuthority", "cosign")
_VERSIONS = ("1.0",)


@dataclass(frozen=True)
class Statement:
    """One entry of `trustPolicies`."""

    name: str
    scopes: tuple[str, ...]
    level: str
    trust_stores: tuple[tuple[str, str], ...]  # (type, name)
    # Each a subject's attributes by short name; None: any identity (`*`).
    trusted_identities: tuple[dict[str, str], ...] | None


@dataclass(frozen=True)
class TrustPolicy:
    version: str
    statements: tuple[Statement, ...]
    document: Mapping[str, Any]  # as given, shown back

    def for_repository(self, repo: str, login_server: str) -> Statement | None:
        qualified = f"{login_server}/{repo}"
        best: tuple[int, Statement] | None = None
        wildcard: Statement | None = None
        for statement in self.statements:
            for scope in statement.scopes:
                if scope == "*":
                    wildcard = statement
                elif scope in (repo, qualified):
                    return statement
                elif _is_pattern(scope) and (
                    fnmatch.fnmatchcase(repo, scope) or fnmatch.fnmatchcase(qualified, scope)
                ):
                    weight = len(_fixed_prefix(scope))
                    if best is None or weight > best[0]:
                        best = (weight, statement)
        return best[1] if best is not None else wildcard

    def store_names(self) -> set[tuple[str, str]]:
        return {store for s in self.statements for store in s.trust_stores}


def _is_pattern(scope: str) -> bool:
    return any(c in scope for c in "*?[")


def _fixed_prefix(scope: str) -> str:
    cut = min((scope.index(c) for c in "*?[" if c in scope), default=len(scope))
    return scope[:cut]


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise TrustPolicyInvalid(f"{what} must be a list of non-empty strings")
    return value


def parse_store_reference(text: str) -> tuple[str, str]:
    kind, colon, name = text.partition(":")
    if not colon or kind not in STORE_TYPES or not name:
        raise TrustPolicyInvalid(
            f"trust store {text!r} must be TYPE:NAME, TYPE one of {', '.join(STORE_TYPES)}"
        )
    return kind, name


def parse_policy(document: Any) -> TrustPolicy:
    """Read and check a trust policy document; `TrustPolicyInvalid` names what is wrong."""
    if not isinstance(document, dict):
        raise TrustPolicyInvalid("the trust policy must be a JSON object")
    version = document.get("version")
    if version not in _VERSIONS:
        raise TrustPolicyInvalid(f"the trust policy's version must be {' or '.join(_VERSIONS)}")
    entries = document.get("trustPolicies")
    if not isinstance(entries, list) or not entries:
        raise TrustPolicyInvalid("trustPolicies must be a non-empty list")
    statements = [_statement(entry, i) for i, entry in enumerate(entries)]
    names = [s.name for s in statements]
    if len(set(names)) != len(names):
        raise TrustPolicyInvalid("trust policy names must be unique")
    seen: dict[str, str] = {}
    for statement in statements:
        for scope in statement.scopes:
            if scope in seen:
                raise TrustPolicyInvalid(
                    f"scope {scope!r} is in both {seen[scope]!r} and {statement.name!r}"
                )
            seen[scope] = statement.name
    return TrustPolicy(version, tuple(statements), document)


def _statement(entry: Any, index: int) -> Statement:
    where = f"trustPolicies[{index}]"
    if not isinstance(entry, dict):
        raise TrustPolicyInvalid(f"{where} must be an object")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise TrustPolicyInvalid(f"{where}.name is required")
    scopes = _strings(entry.get("registryScopes"), f"{name}: registryScopes")
    if not scopes:
        raise TrustPolicyInvalid(f"{name}: registryScopes must name at least one scope")
    if "*" in scopes and len(scopes) > 1:
        raise TrustPolicyInvalid(f"{name}: the scope '*' must stand alone")
    verification = entry.get("signatureVerification")
    level = verification.get("level") if isinstance(verification, dict) else None
    if level not in LEVELS:
        raise TrustPolicyInvalid(
            f"{name}: signatureVerification.level must be one of {', '.join(LEVELS)}"
        )
    if level == "skip":
        return Statement(name, tuple(scopes), level, (), None)
    stores = tuple(
        parse_store_reference(s)
        for s in _strings(entry.get("trustStores", []), f"{name}: trustStores")
    )
    if not stores:
        raise TrustPolicyInvalid(f"{name}: a level other than skip needs trustStores")
    identities = _strings(entry.get("trustedIdentities", []), f"{name}: trustedIdentities")
    x509 = any(kind != "cosign" for kind, _ in stores)
    if x509 and not identities:
        raise TrustPolicyInvalid(
            f"{name}: trustedIdentities is required with a ca or signingAuthority store "
            "('*' trusts every identity the stores' CAs certify)"
        )
    trusted: tuple[dict[str, str], ...] | None
    if "*" in identities:
        if len(identities) > 1:
            raise TrustPolicyInvalid(f"{name}: the identity '*' must stand alone")
        trusted = None
    else:
        try:
            trusted = tuple(parse_identity(i) for i in identities)
        except ValueError as exc:
            raise TrustPolicyInvalid(f"{name}: {exc}") from None
    return Statement(name, tuple(scopes), level, stores, trusted)


def check_stores(policy: TrustPolicy, existing: Sequence[tuple[str, str]]) -> None:
    """Refuse a policy that names a trust store the registry does not have."""
    missing = sorted(policy.store_names() - set(existing))
    if missing:
        listed = ", ".join(f"{kind}:{name}" for kind, name in missing)
        raise TrustPolicyInvalid(f"no such trust store: {listed} (add it first)")
