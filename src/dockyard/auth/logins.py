"""Logging in: the credentials a request carries become who is calling and what they
may do (`Caller`).

- A bearer access token is verified once and remembered, with the caller it gives,
  until it expires: ECDSA verification costs more than a manifest GET, which makes one
  dictionary look-up for it. The memory is this object's own, per process.
- Basic credentials are a password login whose result (principal and grants) is
  remembered by a digest of registry, address and header, never the password, until
  the configuration changes (`Metadata.remember`): disabling a token, or a lockout,
  takes effect at once. Keyed by address too: a lockout of (identity, address) must not
  be skipped by a password checked from somewhere else.
- A password login (a user name and password, or an identity's client id and secret)
  checks the lockout first and records the attempt (`LoginGuard`); argon2 takes tens of
  milliseconds, so the check runs off the event loop.
- An identity's token: one this server issued for an identity audience (the
  management API's bearer token, or the access token `/oauth2/exchange` turns into a
  refresh token), or, for the exchange, one of a trusted OpenID Connect issuer
  (`ExternalIssuers`), while the identity may still log in; and the ID token of the
  portal's sign-in through such an issuer.
- Nobody: the anonymous caller, with the registry's anonymous grants.

Never reads HTTP: `api/authorization.py` hands in the header's credentials and the
client address, and answers refusals with 401 and its challenge."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from dockyard.auth.login_guard import LoginGuard
from dockyard.auth.oidc import ExternalIssuers
from dockyard.auth.permissions import Grants, Scope, granted_words
from dockyard.auth.principals import ANONYMOUS, AuthenticationFailed, Authenticator, Principal
from dockyard.auth.tokens import IDENTITY_AUDIENCES, InvalidToken, TokenSigner
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

# Verified bearer tokens kept at most; past it the memory starts again (a flood of
# distinct tokens costs verifications, never memory).
BEARER_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class Caller:
    """Who made the request and what they may do; `may` answers per scope."""

    principal: Principal | None
    grants: Grants | None  # None: a bearer token; its `access` claim decides
    token_access: dict[tuple[str, str], frozenset[str]]
    open: bool = False  # authentication is switched off

    def may(self, scope: Scope) -> bool:
        if self.open:
            return True
        if self.grants is not None:
            return set(scope.words) <= set(granted_words(self.grants, scope))
        granted = self.token_access.get((scope.type, scope.name), frozenset())
        return "*" in granted or set(scope.words) <= granted


OPEN = Caller(None, None, {}, open=True)

current_caller: ContextVar[Caller | None] = ContextVar("current_caller", default=None)
"""The caller `api.authorization.authorize` let in, for the length of its request: for
the pull policies that let some callers through what they refuse others (quarantine's
readers), asked through `Logins.allows`. None outside a request (the background work,
the offline CLI), which is the registry itself."""


class CredentialsMalformed(AuthenticationFailed):
    """Basic credentials that are no base64 of UTF-8 `user:password`."""


class Logins:
    def __init__(
        self,
        meta: Metadata,
        authenticator: Authenticator,
        tokens: TokenSigner,
        guard: LoginGuard,
        issuers: ExternalIssuers,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._meta = meta
        self._authenticator = authenticator
        self._tokens = tokens
        self._guard = guard
        self._issuers = issuers
        self._now = now
        # (registry id, token) -> (its expiry, its caller): checked on every request.
        self._bearers: dict[tuple[int, str], tuple[float, Caller]] = {}

    def bearer(self, registry: RegistryRecord, token: str) -> Caller:
        """The caller an access token for this registry names, with the access it
        carries. Raises `InvalidToken`."""
        key = (registry.id, token)
        known = self._bearers.get(key)
        if known is not None and known[0] > self._now():
            return known[1]
        claims = self._tokens.decode(token, registry.login_server, "access_token")
        access = {
            (entry.get("type", ""), entry.get("name", "")): frozenset(entry.get("actions", ()))
            for entry in claims.get("access", ())
            if isinstance(entry, dict)
        }
        subject = claims["sub"]
        caller = Caller(Principal(subject, subject, "bearer"), None, access)
        if len(self._bearers) > BEARER_CACHE_SIZE:
            self._bearers.clear()
        self._bearers[key] = (claims["exp"], caller)
        return caller

    def allows(
        self, registry: RegistryRecord, caller: Caller, repository: str, action: str
    ) -> bool:
        """Whether `caller` holds the data action `action` on `repository`, whatever its
        token asked for: a bearer token's subject is looked up again (its grants now,
        kept until the configuration changes), so an action no scope word names (the
        quarantine ones) is checked all the same, and a role taken away counts at once."""
        if caller.open:
            return True
        grants = caller.grants
        if grants is None:
            assert caller.principal is not None
            key = ("grants", registry.id, caller.principal.subject)
            grants = self._meta.recall(key, config=True)
            if grants is None:
                try:
                    principal = self._authenticator.principal(registry, caller.principal.subject)
                except AuthenticationFailed:
                    return False
                grants = self._authenticator.grants(registry, principal)
                self._meta.remember(key, grants, config=True)
        return grants.allows(repository, action)

    def anonymous(self, registry: RegistryRecord) -> tuple[Principal, Grants]:
        """The anonymous caller and its grants (none unless the registry has anonymous
        pull)."""
        principal = Principal(ANONYMOUS, ANONYMOUS, ANONYMOUS)
        return principal, self._authenticator.grants(registry, principal)

    async def basic(
        self, registry: RegistryRecord, credentials: str, address: str, user_agent: str | None
    ) -> tuple[Principal, Grants]:
        """A Basic header's credentials (base64 `user:password`) logged in, with the
        principal's grants. Raises `AuthenticationFailed` (`CredentialsMalformed` for a
        header that is no such thing) or the guard's `TooManyRequests`."""
        key = ("basic", hashlib.sha256(f"{registry.id}:{address}:{credentials}".encode()).digest())
        hit = self._meta.recall(key, config=True)
        if hit is not None:
            return hit
        try:
            username, _, password = base64.b64decode(credentials).decode().partition(":")
        except ValueError:  # bad base64 or UTF-8, or a header byte past ASCII (`\xff`)
            raise CredentialsMalformed("malformed Basic credentials") from None
        principal = await self.password(registry, username, password, address, user_agent)
        grants = self._authenticator.grants(registry, principal)
        self._meta.remember(key, (principal, grants), config=True)
        return principal, grants

    async def password(
        self,
        registry: RegistryRecord,
        username: str,
        password: str,
        address: str,
        user_agent: str | None,
        identities_only: bool = False,
    ) -> Principal:
        """Log in with a user name and password (or, `identities_only`, an identity's
        client id and secret), refused while locked out and recorded for the audit log.
        Raises `AuthenticationFailed` or the guard's `TooManyRequests`."""
        method = "client_credentials" if identities_only else "password"
        account = self._authenticator.account(registry, username, identities_only)
        self._guard.check(registry.id, username, address, method, user_agent, account)
        try:
            if identities_only:
                principal = await asyncio.to_thread(
                    self._authenticator.identity_login, username, password
                )
            else:
                principal = await asyncio.to_thread(
                    self._authenticator.login, registry, username, password
                )
        except AuthenticationFailed as exc:
            self._guard.failed(
                registry.id, username, address, method, exc.reason, user_agent, account
            )
            raise
        self._guard.succeeded(registry.id, username, address, method, user_agent, account)
        return principal

    async def identity(
        self, registry: RegistryRecord, token: str, audience: str | tuple[str, ...]
    ) -> Principal:
        """The identity an identity token for `audience` names, while it may log in
        (`registry` only places the look-up). Raises `AuthenticationFailed`, an invalid
        token's reason included."""
        try:
            claims = self._tokens.decode(token, audience, "identity")
        except InvalidToken as exc:
            raise AuthenticationFailed(str(exc)) from None
        return await asyncio.to_thread(
            self._authenticator.principal, registry, f"identity:{claims['sub']}"
        )

    async def signed_in(
        self,
        registry: RegistryRecord,
        issuer: str,
        id_token: str,
        client_id: str,
        nonce: str,
        address: str,
        user_agent: str | None,
    ) -> Principal:
        """The identity a trusted issuer's ID token names, for the portal's sign-in
        (`ExternalIssuers.signed_in`), while the identity may log in; recorded as an
        `oidc` login. Raises `AuthenticationFailed`."""
        try:
            key = await asyncio.to_thread(
                self._issuers.signed_in, issuer, id_token, client_id, nonce
            )
            principal = await asyncio.to_thread(
                self._authenticator.principal, registry, f"identity:{key}"
            )
        except (InvalidToken, AuthenticationFailed) as exc:
            self._guard.failed(registry.id, "unknown", address, "oidc", str(exc), user_agent)
            raise AuthenticationFailed(str(exc)) from None
        self._guard.succeeded(registry.id, principal.name, address, "oidc", user_agent)
        return principal

    async def exchange(
        self, registry: RegistryRecord, token: str, address: str, user_agent: str | None
    ) -> Principal:
        """The identity an access token names, for `/oauth2/exchange`: one this server
        issued, or one of a trusted OpenID Connect issuer whose subject names an
        identity; recorded as an `exchange` login. Raises `AuthenticationFailed`."""
        try:
            if self._issuers.issues(token):
                # The issuer's keys may have to be fetched: off the event loop.
                key = await asyncio.to_thread(self._issuers.identity, token)
                principal = await asyncio.to_thread(
                    self._authenticator.principal, registry, f"identity:{key}"
                )
            else:
                principal = await self.identity(registry, token, IDENTITY_AUDIENCES)
        except (InvalidToken, AuthenticationFailed) as exc:
            self._guard.failed(registry.id, "unknown", address, "exchange", str(exc), user_agent)
            raise AuthenticationFailed(str(exc)) from None
        self._guard.succeeded(registry.id, principal.name, address, "exchange", user_agent)
        return principal
