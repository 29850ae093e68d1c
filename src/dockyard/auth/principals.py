"""Who is calling, and what they may do: the admin user, identities (users, service
principals), repository-scoped tokens, refresh-token holders, and the anonymous caller."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.auth.passwords import password_matches
from dockyard.auth.permissions import META_READ, READ, Grants, Rule, role_rules, scope_map_rules
from dockyard.auth.secret_box import SecretBox
from dockyard.auth.tokens import InvalidToken, TokenSigner
from dockyard.metadata.access import AccessStore, AccessWrites, SecretRecord
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

# `az acr login` hands docker this user name with a refresh token as the password.
NULL_GUID = "00000000-0000-0000-0000-000000000000"
ANONYMOUS = "anonymous"


class AuthenticationFailed(Exception):
    """Credentials that do not log in. `reason` is for the audit log, not the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """`subject` is what tokens carry: `admin`, `token:<name>`, `identity:<id>`, or
    `anonymous`; `name` is what the audit log shows."""

    subject: str
    name: str
    kind: str


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

    def _admin(self, registry: RegistryRecord, password: str) -> Principal:
        if not self._store.admin_user_enabled(registry.id):
            raise AuthenticationFailed("admin user is disabled")
        for record in self._store.admin_passwords(registry.id):
            if hmac.compare_digest(self._box.open(record.value), password):
                return Principal("admin", registry.name, "admin")
        raise AuthenticationFailed("wrong admin password")

    def _token(self, token_id: int, name: str, enabled: bool, password: str) -> Principal:
        if not enabled:
            raise AuthenticationFailed(f"token {name} is disabled")
        if not self._any_secret_matches(self._store.token_passwords(token_id), password):
            raise AuthenticationFailed(f"wrong or expired password for token {name}")
        return Principal(f"token:{name}", name, "token")

    def identity_login(self, client_id: str, secret: str) -> Principal:
        identity = self._store.identity(client_id)
        if identity is None:
            raise AuthenticationFailed(f"unknown user {client_id}")
        if not identity.enabled:
            raise AuthenticationFailed(f"identity {identity.name} is disabled")
        if not self._any_secret_matches(self._store.identity_secrets(identity.id), secret):
            raise AuthenticationFailed(f"wrong or expired secret for {identity.name}")
        return Principal(f"identity:{identity.id}", identity.name, "identity")

    def _any_secret_matches(self, records: list[SecretRecord], secret: str) -> bool:
        now = self._clock()
        return any(
            (r.expires_at is None or r.expires_at > now) and password_matches(r.value, secret)
            for r in records
        )

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
        return self.principal(registry, claims["sub"])

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
