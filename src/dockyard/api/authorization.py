"""Checking each request against what its caller may do.

Every protected handler starts with `await authorize(request, ...)` naming the docker
scope it needs (`repository:<name>:pull`, `registry:catalog:*`, or None for "any login").
A bearer token must carry that access; Basic credentials (which ACR also accepts on
`/v2/`) are checked against the principal's grants; with neither, the anonymous caller's
grants apply. Failing that, the client gets the token-auth challenge."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass

from starlette.requests import Request

from dockyard.api.network import caller_ip, scope_registry
from dockyard.auth.permissions import Grants, Scope, granted_words
from dockyard.auth.principals import AuthenticationFailed, Principal
from dockyard.auth.tokens import InvalidToken
from dockyard.core.errors import Denied, Unauthorized
from dockyard.core.request_context import current_request
from dockyard.metadata.records import RegistryRecord
from dockyard.services import Services


@dataclass(frozen=True)
class Caller:
    """Who made the request and what they may do; `access` answers per repository."""

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


def request_registry(request: Request) -> RegistryRecord:
    """The registry the request's Host names (`api.network.scope_registry`)."""
    services: Services = request.app.state.services
    return scope_registry(request.scope, services.registries)


def repository_scope(name: str, words: str) -> Scope:
    return Scope("repository", name, tuple(words.split(",")))


CATALOG = Scope("registry", "catalog", ("*",))
DELETED_CATALOG = Scope("registry", "deleted_catalog", ("*",))


async def authorize(request: Request, scope: Scope | None, also: Scope | None = None) -> Caller:
    """The caller, if it may use `scope`. `also`: a scope the handler uses only if the
    caller has it, which a 401's challenge names beside `scope` so that a client that
    follows the challenge asks for both (a cross-repository mount's source, as CNCF
    Distribution does)."""
    services: Services = request.app.state.services
    if not services.settings.auth.enabled:
        _note_caller(request, None)
        return OPEN
    registry = request_registry(request)
    caller = await _caller(request, services, registry, scope, also)
    _note_caller(request, caller.principal)
    if scope is None:
        # `GET /v2/`: any login, an anonymous caller's token included. A caller with
        # neither is challenged even when the registry has anonymous pull, as ACR does:
        # `az acr login` checks for that challenge, and clients then pull with a token.
        if caller.principal is not None and caller.principal.kind != "anonymous":
            return caller
        raise Unauthorized("authentication required")
    if caller.may(scope):
        return caller
    if (
        caller.grants is not None
        and caller.principal is not None
        and (caller.principal.kind != "anonymous")
    ):
        raise Denied(
            f"{caller.principal.name} may not {','.join(scope.words)} {scope.type} {scope.name}",
            detail=_detail(scope),
        )
    raise Unauthorized(
        "authentication required"
        if caller.principal is None or (caller.principal.kind == "anonymous")
        else f"the token does not grant {','.join(scope.words)} on {scope.name}",
        detail=_detail(scope),
        scope=_challenge_scope(scope, also),
        error=None if caller.grants is not None else "insufficient_scope",
    )


async def authorize_one_of(request: Request, name: str, *choices: str) -> Caller:
    """Allowed if any one of `choices` (docker scope words) is; the challenge names the
    first. ACR lets either `content/delete` or `metadata/write` untag, for example."""
    first: Denied | Unauthorized | None = None
    for words in choices:
        try:
            return await authorize(request, repository_scope(name, words))
        except (Denied, Unauthorized) as exc:
            first = first or exc
    assert first is not None
    raise first


def _note_caller(request: Request, principal: Principal | None) -> None:
    """Who the request runs as and from where, for its events and audit row."""
    info = current_request.get()
    if info is not None:
        info.caller_ip = client_address(request)
        info.identity = None if principal is None else principal.name


def _detail(scope: Scope) -> list[dict[str, str]]:
    return [{"Type": scope.type, "Name": scope.name, "Action": word} for word in scope.words]


def _challenge_scope(scope: Scope, also: Scope | None = None) -> str:
    """The challenge's `scope`: several are separated by spaces inside the quotes."""
    if scope.type == "repository" and "push" in scope.words and "pull" not in scope.words:
        scope = Scope(scope.type, scope.name, ("push", "pull"))
    return str(scope) if also is None else f"{scope} {also}"


async def _caller(
    request: Request,
    services: Services,
    registry: RegistryRecord,
    scope: Scope | None,
    also: Scope | None,
) -> Caller:
    header = request.headers.get("authorization", "")
    kind, _, credentials = header.partition(" ")
    kind = kind.lower()
    if kind == "bearer" and credentials:
        key = (registry.id, credentials)
        known = services.bearer_callers.get(key)
        if known is not None and known[0] > time.time():
            return known[1]
        try:
            claims = services.tokens.decode(credentials, registry.login_server, "access_token")
        except InvalidToken as exc:
            raise Unauthorized(
                str(exc),
                scope=None if scope is None else _challenge_scope(scope, also),
                error="invalid_token",
            ) from None
        access = {
            (entry.get("type", ""), entry.get("name", "")): frozenset(entry.get("actions", ()))
            for entry in claims.get("access", ())
            if isinstance(entry, dict)
        }
        subject = claims["sub"]
        caller = Caller(Principal(subject, subject, "bearer"), None, access)
        if len(services.bearer_callers) > 10_000:
            services.bearer_callers.clear()
        services.bearer_callers[key] = (claims["exp"], caller)
        return caller
    if kind == "basic" and credentials:
        principal, grants = await basic_login(request, services, registry, credentials)
        return Caller(principal, grants, {})
    principal = Principal("anonymous", "anonymous", "anonymous")
    return Caller(principal, services.authenticator.grants(registry, principal), {})


async def basic_login(
    request: Request, services: Services, registry: RegistryRecord, credentials: str
) -> tuple[Principal, Grants]:
    """Check Basic credentials. argon2 takes tens of milliseconds, so the check runs off
    the event loop and its result is remembered (by a digest of address and header, never
    the password) until the configuration changes (`Metadata.remember`): disabling a
    token, or a lockout, takes effect at once."""
    # Keyed by address too: a lockout of (identity, address) must not be skipped by a
    # password that was checked from somewhere else.
    address = client_address(request)
    key = ("basic", hashlib.sha256(f"{registry.id}:{address}:{credentials}".encode()).digest())
    hit = services.meta.recall(key, config=True)
    if hit is not None:
        return hit
    try:
        username, _, password = base64.b64decode(credentials).decode().partition(":")
    except ValueError:  # bad base64 or UTF-8, or a header byte past ASCII (`\xff`)
        raise Unauthorized("malformed Basic credentials") from None
    principal = await password_login(request, services, registry, username, password)
    grants = services.authenticator.grants(registry, principal)
    services.meta.remember(key, (principal, grants), config=True)
    return principal, grants


async def password_login(
    request: Request,
    services: Services,
    registry: RegistryRecord,
    username: str,
    password: str,
    identities_only: bool = False,
) -> Principal:
    """Log in with a user name and password (or an identity's client id and secret),
    rate-limited and recorded for the audit log."""
    guard = services.login_guard
    address = client_address(request)
    method = "client_credentials" if identities_only else "password"
    user_agent = request.headers.get("user-agent")
    account = services.authenticator.account(registry, username, identities_only)
    guard.check(registry.id, username, address, method, user_agent, account)
    try:
        if identities_only:
            principal = await asyncio.to_thread(
                services.authenticator.identity_login, username, password
            )
        else:
            principal = await asyncio.to_thread(
                services.authenticator.login, registry, username, password
            )
    except AuthenticationFailed as exc:
        guard.failed(registry.id, username, address, method, exc.reason, user_agent, account)
        raise Unauthorized("incorrect user name or password") from None
    guard.succeeded(registry.id, username, address, method, user_agent, account)
    return principal


def client_address(request: Request) -> str:
    """The caller's address as the network layer resolved it (trusted proxies applied)."""
    return caller_ip(request) or (request.client.host if request.client else "unknown")


def challenge_headers(request: Request, error: Unauthorized) -> dict[str, str]:
    """The token-auth challenge: where to get a token (`realm`, on the host the client
    used), for which registry (`service`) and what to ask for (`scope`). The Azure SDK
    needs `service` and `scope` on every 401 it can see."""
    registry = request_registry(request)
    realm = f"{request.url.scheme}://{request.headers.get('host', registry.login_server)}"
    parts = [f'realm="{realm}/oauth2/token"', f'service="{registry.login_server}"']
    if error.scope is not None:
        parts.append(f'scope="{error.scope}"')
    if error.error is not None:
        parts.append(f'error="{error.error}"')
    return {"WWW-Authenticate": "Bearer " + ",".join(parts)}
