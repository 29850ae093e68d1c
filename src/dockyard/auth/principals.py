"""Who is calling, and what they may do: the admin user, identities (users, service
principals), repository-scoped tokens, refresh-token holders, and the anonymous caller."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.auth.passwords import password_matches, spend_verification
from dockyard.auth.permissions import META_READ, READ, Grants, Rule, role_rules, scope_map_rules
from dockyard.auth.secret_box import SecretBox
from dockyard.auth.tokens import InvalidToken, TokenSigner
from dockyard.metadata.access import AccessStore, AccessWrites, SecretRecord
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

# `az acr login` hands docker this user name with a refresh token as the password.
NULL_GUID = "00000000-0000-0000-0000-000000000000"
ANONYMOUS = "anonymous"
# argon2 verifications every failed login costs at least (a token has two passwords).
MIN_VERIFICATIONS = 2


class AuthenticationFailed(Exception):
    """Credentials that do not log in. `reason` is for the audit log, not the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """`subject` is what tokens carry: `admin`, `token:<name>`, `identity:<id>`, or
    `anonymous`; `name` is what the audit log shows. `credential`: which password or
    secret logged in (`fingerprint`), carried by the refresh tokens it buys so that they
    die with it; None when none did (an identity token's exchange)."""

    subject: str
    name: str
    kind: str
    credential: str | None = None


def fingerprint(record: SecretRecord) -> str:
    """Names one stored password or secret, and changes when it is regenerated: a digest
    of its stored form (a salted argon2 hash or a sealed secret), which tells nothing of
    the password itself."""
    return hashlib.sha256(record.value.encode()).hexdigest()[:16]


class Authenticator:
    def __init__(
        self,
        meta: Metadata,
        box: SecretBox,
        signer: TokenSigner,
        clock: Callable[[], datetime],
    ) -> None:
        self._meta = meta
        self._store = AccessStore(meta)
        self._box = box
        self._signer = signer
        self._clock = clock

    # -- logging in ------------------------------------------------------------------------

    def login(self, registry: RegistryRecord, username: str, password: str) -> Principal:
        """Check a user name and password the way ACR does: the admin user (named like the
        registry), the null GUID with a refresh token, a token, or an identity."""
        if not username or not password:
            raise AuthenticationFailed("empty user name or password")
        if username == NULL_GUID:
            return self.refresh_principal(registry, password)
        if username.lower() == registry.name.lower():
            return self._admin(registry, password)
        tokens = self._store.tokens(registry.id, username)
        if tokens:
            return self._token(tokens[0].id, tokens[0].name, tokens[0].enabled, password)
        return self.identity_login(username, password)

    def account(
        self, registry: RegistryRecord, username: str, identities_only: bool = False
    ) -> str | None:
        """What a login by `username` is an attempt on, resolved as `login` resolves it:
        `admin@<registry id>`, `token:<id>` or `identity:<id>`; None when the name names
        none. The lockout counts per account, so an identity's client id and name, and
        every Host it is tried under, share one count."""
        if not identities_only:
            if username.lower() == registry.name.lower():
                return f"admin@{registry.id}"
            tokens = self._store.tokens(registry.id, username)
            if tokens:
                return f"token:{tokens[0].id}"
        identity = self._store.identity(username)
        return None if identity is None else f"identity:{identity.id}"

    def _admin(self, registry: RegistryRecord, password: str) -> Principal:
        if not self._store.admin_user_enabled(registry.id):
            raise AuthenticationFailed("admin user is disabled")
        for record in self._store.admin_passwords(registry.id):
            if hmac.compare_digest(self._box.open(record.value, registry.id), password):
                return Principal("admin", registry.name, "admin", fingerprint(record))
        raise AuthenticationFailed("wrong admin password")

    def _token(self, token_id: int, name: str, enabled: bool, password: str) -> Principal:
        match = self._matching_secret(self._store.token_passwords(token_id), password)
        if not enabled:
            raise AuthenticationFailed(f"token {name} is disabled")
        if match is None:
            raise AuthenticationFailed(f"wrong or expired password for token {name}")
        return Principal(f"token:{name}", name, "token", fingerprint(match))

    def identity_login(self, client_id: str, secret: str) -> Principal:
        identity = self._store.identity(client_id)
        records = [] if identity is None else self._store.identity_secrets(identity.id)
        match = self._matching_secret(records, secret)
        if identity is None:
            raise AuthenticationFailed(f"unknown user {client_id}")
        if not identity.enabled:
            raise AuthenticationFailed(f"identity {identity.name} is disabled")
        if match is None:
            raise AuthenticationFailed(f"wrong or expired secret for {identity.name}")
        return Principal(f"identity:{identity.id}", identity.name, "identity", fingerprint(match))

    def _matching_secret(self, records: list[SecretRecord], secret: str) -> SecretRecord | None:
        """The unexpired record `secret` matches. A miss costs at least `MIN_VERIFICATIONS`
        argon2 verifications whatever there was to check (an unknown name, expired
        secrets, one secret), so that its time does not tell which names exist."""
        now = self._clock()
        verified = 0
        for record in records:
            if record.expires_at is None or record.expires_at > now:
                verified += 1
                if password_matches(record.value, secret):
                    return record
        for _ in range(MIN_VERIFICATIONS - verified):
            spend_verification(secret)
        return None

    def refresh_principal(self, registry: RegistryRecord, refresh_token: str) -> Principal:
        """The holder of a refresh token this registry issued, if it still stands."""
        try:
            claims = self._signer.decode(refresh_token, registry.login_server, "refresh_token")
        except InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from None
        record = self._store.refresh_token(claims["jti"])
        if record is None or record.registry_id != registry.id:
            raise AuthenticationFailed("refresh token is unknown to this registry")
        if record.revoked_at is not None:
            raise AuthenticationFailed("refresh token has been revoked")
        principal = self.principal(registry, claims["sub"])
        credential = claims.get("cred")
        if credential is None:
            return principal
        if not any(fingerprint(r) == credential for r in self._credentials(registry, principal)):
            raise AuthenticationFailed(
                "the password it was issued with has been regenerated, has expired or is gone"
            )
        return dataclasses.replace(principal, credential=credential)

    def _credentials(self, registry: RegistryRecord, principal: Principal) -> list[SecretRecord]:
        """The principal's passwords or secrets that log in now (unexpired)."""
        if principal.kind == "admin":
            records = self._store.admin_passwords(registry.id)
        elif principal.kind == "token":
            tokens = self._store.tokens(registry.id, principal.name)
            records = self._store.token_passwords(tokens[0].id) if tokens else []
        elif principal.kind == "identity":
            records = self._store.identity_secrets(principal.subject.partition(":")[2])
        else:
            records = []
        now = self._clock()
        return [r for r in records if r.expires_at is None or r.expires_at > now]

    def record_refresh_token(self, registry: RegistryRecord, claims: dict[str, Any]) -> None:
        """Remember a refresh token's id, so that it can be revoked."""
        with self._meta.transaction() as tx:
            AccessWrites(tx).add_refresh_token(
                claims["jti"],
                registry.id,
                claims["sub"],
                datetime.fromtimestamp(claims["exp"], UTC),
            )

    def principal(self, registry: RegistryRecord, subject: str) -> Principal:
        """The principal a token's subject names, checked again: a disabled token or
        identity, or a disabled admin user, loses access at once."""
        kind, _, key = subject.partition(":")
        if subject == "admin":
            if not self._store.admin_user_enabled(registry.id):
                raise AuthenticationFailed("admin user is disabled")
            return Principal("admin", registry.name, "admin")
        if kind == "token":
            tokens = self._store.tokens(registry.id, key)
            if not tokens or not tokens[0].enabled:
                raise AuthenticationFailed(f"token {key} is disabled or gone")
            return Principal(subject, key, "token")
        if kind == "identity":
            identity = self._store.identity(key)
            if identity is None or not identity.enabled:
                raise AuthenticationFailed("identity is disabled or gone")
            return Principal(f"identity:{identity.id}", identity.name, "identity")
        if subject == ANONYMOUS:
            return Principal(ANONYMOUS, ANONYMOUS, ANONYMOUS)
        raise AuthenticationFailed(f"unknown subject {subject!r}")

    # -- what they may do --------------------------------------------------------------------

    def grants(self, registry: RegistryRecord, principal: Principal) -> Grants:
        if principal.kind == "admin":
            return Grants(everything=True)
        if principal.kind == "token":
            tokens = self._store.tokens(registry.id, principal.name)
            if not tokens:
                return Grants()
            maps = self._store.scope_maps(registry.id, tokens[0].scope_map)
            rules = scope_map_rules(maps[0].actions) if maps else ()
            catalog = any(r.pattern == "*" and r.actions for r in rules)
            return Grants(rules=rules, catalog=catalog)
        if principal.kind == "identity":
            identity_id = principal.subject.partition(":")[2]
            rules: list[Rule] = []
            catalog = False
            for assignment in self._store.role_assignments(
                registry.id, identity_id, server_wide=True
            ):
                rule, lists = role_rules(assignment.role, assignment.repository)
                rules.append(rule)
                catalog = catalog or lists
            return Grants(rules=tuple(rules), catalog=catalog)
        if self._store.anonymous_pull_enabled(registry.id):
            # ACR's anonymous pull covers every read: pulls, listings, properties.
            return Grants(rules=(Rule("*", frozenset({READ, META_READ})),), catalog=True)
        return Grants()
