"""Checking each request against what its caller may do: the HTTP side of logging in.

Every protected handler starts with `await authorize(request, ...)` naming the docker
scope it needs (`repository:<name>:pull`, `registry:catalog:*`, or None for "any login").
A bearer token must carry that access; Basic credentials (which ACR also accepts on
`/v2/`) are checked against the principal's grants; with neither, the anonymous caller's
grants apply. Failing that, the client gets the token-auth challenge. This module reads
the headers and the client address, hands them to `auth.logins.Logins` (which checks
them and keeps what it verified), and answers its refusals: 401 with the challenge, or
403."""

from __future__ import annotations

from starlette.requests import Request

from dockyard.api.network import caller_ip, scope_registry
from dockyard.auth.logins import OPEN, Caller, CredentialsMalformed, current_caller
from dockyard.auth.permissions import Grants, Scope
from dockyard.auth.principals import AuthenticationFailed, Principal
from dockyard.auth.tokens import InvalidToken
from dockyard.common.errors import Denied, Unauthorized
from dockyard.common.request_context import current_request
from dockyard.core.registries import RegistryRecord
from dockyard.services import Services


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
        current_caller.set(OPEN)
        return OPEN
    registry = request_registry(request)
    caller = await _caller(request, services, registry, scope, also)
    _note_caller(request, caller.principal)
    current_caller.set(caller)
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
        try:
            return services.logins.bearer(registry, credentials)
        except InvalidToken as exc:
            raise Unauthorized(
                str(exc),
                scope=None if scope is None else _challenge_scope(scope, also),
                error="invalid_token",
            ) from None
    if kind == "basic" and credentials:
        principal, grants = await basic_login(request, services, registry, credentials)
        return Caller(principal, grants, {})
    principal, grants = services.logins.anonymous(registry)
    return Caller(principal, grants, {})


async def basic_login(
    request: Request, services: Services, registry: RegistryRecord, credentials: str
) -> tuple[Principal, Grants]:
    """A Basic header's credentials logged in (`Logins.basic`), or 401."""
    try:
        return await services.logins.basic(
            registry, credentials, client_address(request), request.headers.get("user-agent")
        )
    except AuthenticationFailed as exc:
        raise _refused(exc) from None


async def password_login(
    request: Request,
    services: Services,
    registry: RegistryRecord,
    username: str,
    password: str,
    identities_only: bool = False,
) -> Principal:
    """A user name and password (or an identity's client id and secret) logged in from
    the request's address (`Logins.password`), or 401."""
    try:
        return await services.logins.password(
            registry,
            username,
            password,
            client_address(request),
            request.headers.get("user-agent"),
            identities_only,
        )
    except AuthenticationFailed as exc:
        raise _refused(exc) from None


def _refused(exc: AuthenticationFailed) -> Unauthorized:
    """What a client is told of a failed login: never why (the reason is the audit
    log's), except that its header was no Basic credentials at all."""
    if isinstance(exc, CredentialsMalformed):
        return Unauthorized("malformed Basic credentials")
    return Unauthorized("incorrect user name or password")


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
