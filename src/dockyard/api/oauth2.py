"""The token service, ACR flavour: `/oauth2/token` (docker's Basic GET, and the POST
grants `password`, `refresh_token`, `client_credentials`), `/oauth2/exchange` (an
identity's token -> a refresh token) and `/oauth2/jwks` (the keys that verify them).
Every token endpoint refuses in OAuth's error shape with ACR's `errors` beside it
(`oauth_errors`).

`/oauth2/v2.0/token` answers as Entra ID's token endpoint does, with identity tokens only
(the client-credentials grant, or an identity's refresh token) and OAuth's error shape:
outside every registry's network rules, as Entra ID is, for the management API's callers
(`management/api/cloud.py` serves it under the tenant's path too, where MSAL looks for it)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import orjson
from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.authorization import (
    basic_login,
    client_address,
    password_login,
    request_registry,
)
from dockyard.api.errors import oauth_error_response
from dockyard.auth.management import MANAGEMENT_AUDIENCE
from dockyard.auth.permissions import Grants, granted_words, parse_scope
from dockyard.auth.principals import ANONYMOUS, AuthenticationFailed, Principal
from dockyard.auth.tokens import IDENTITY_AUDIENCES
from dockyard.common.errors import RegistryError, RequestInvalid, Unauthorized
from dockyard.core.registries import RegistryRecord
from dockyard.services import Services

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenRequestInvalid(RequestInvalid):
    """A grant or scope the token service does not serve: 400 (it was a 500)."""

    code = "UNSUPPORTED"
    default_message = "invalid token request"


class ScopeInvalid(TokenRequestInvalid):
    oauth_error = "invalid_scope"


class GrantUnsupported(TokenRequestInvalid):
    oauth_error = "unsupported_grant_type"


class GrantInvalid(Unauthorized):
    """A refresh token refused: OAuth's `invalid_grant`, the client's secret was not at fault."""

    oauth_error = "invalid_grant"


def oauth_errors(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """A token endpoint that refuses in OAuth's shape (`error`, `error_description`), as
    MSAL reads it, not in the registry API's."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except RegistryError as exc:
            return oauth_error_response(exc)

    return run


def _json(body: dict, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=_NO_STORE
    )


def _context(request: Request) -> tuple[Services, RegistryRecord]:
    services: Services = request.app.state.services
    return services, request_registry(request)


def _scopes(values: list[str]) -> list[str]:
    """`scope` may repeat, and one value may hold several scopes separated by spaces."""
    return [part for value in values for part in value.split(" ") if part]


def _access(grants: Grants, scopes: list[str]) -> list[dict]:
    """What the token carries: for each scope asked for, the words asked for that the
    principal may use, and nothing more (the docker token spec; ACR)."""
    access = []
    for text in scopes:
        scope = parse_scope(text)
        if scope is None:
            continue
        words = granted_words(grants, scope)
        access.append({"type": scope.type, "name": scope.name, "actions": list(words)})
    return access


def _issue(
    services: Services,
    registry: RegistryRecord,
    principal: Principal,
    grants: Grants,
    scopes: list[str],
    with_refresh: bool,
) -> Response:
    token, claims = services.tokens.access_token(
        registry.login_server, principal.subject, _access(grants, scopes)
    )
    body = {
        "access_token": token,
        "token": token,
        "expires_in": claims["exp"] - claims["iat"],
        "issued_at": datetime.fromtimestamp(claims["iat"], UTC).isoformat().replace("+00:00", "Z"),
    }
    if with_refresh and principal.kind != ANONYMOUS:
        body["refresh_token"] = _refresh(services, registry, principal)
    return _json(body)


def _refresh(services: Services, registry: RegistryRecord, principal: Principal) -> str:
    token, claims = services.tokens.refresh_token(
        registry.login_server, principal.subject, principal.credential
    )
    services.authenticator.record_refresh_token(registry, claims)
    return token


def _anonymous(services: Services, registry: RegistryRecord) -> tuple[Principal, Grants]:
    principal, grants = services.logins.anonymous(registry)
    if not grants.rules:
        raise Unauthorized("anonymous access is not enabled on this registry; log in")
    return principal, grants


@oauth_errors
async def token_get(request: Request) -> Response:
    """docker, podman, skopeo: Basic credentials (or none) and `scope` in the query."""
    services, registry = _context(request)
    query: QueryParams = request.query_params
    header = request.headers.get("authorization", "")
    kind, _, credentials = header.partition(" ")
    if kind.lower() == "basic" and credentials:
        principal, grants = await basic_login(request, services, registry, credentials)
    else:
        principal, grants = _anonymous(services, registry)
    offline = query.get("offline_token", "").lower() == "true"
    return _issue(services, registry, principal, grants, _scopes(query.getlist("scope")), offline)


@oauth_errors
async def token_post(request: Request) -> Response:
    services, registry = _context(request)
    form: FormData = await request.form()
    grant = form.get("grant_type", "")
    scopes = _scopes([str(v) for v in form.getlist("scope")])
    if grant == "password":
        username, password = str(form.get("username", "")), str(form.get("password", ""))
        if not username and not password:
            principal, grants = _anonymous(services, registry)  # the Azure SDK's anonymous mode
        else:
            principal = await password_login(request, services, registry, username, password)
            grants = services.authenticator.grants(registry, principal)
        offline = form.get("access_type") == "offline"
        return _issue(services, registry, principal, grants, scopes, offline)
    if grant == "refresh_token":
        principal = _from_refresh(services, registry, str(form.get("refresh_token", "")))
        grants = services.authenticator.grants(registry, principal)
        return _issue(services, registry, principal, grants, scopes, False)
    if grant == "client_credentials":
        principal = await _client(request, services, registry, form)
        return _identity_token(
            services, principal, _identity_audience(request, scopes) or IDENTITY_AUDIENCES[0]
        )
    raise GrantUnsupported(f"unsupported grant_type {grant!r}")


@oauth_errors
async def identity_token_post(request: Request) -> Response:
    """`POST /oauth2/v2.0/token`, Entra's token endpoint's shape: identity tokens only, for
    a scope naming an identity audience (`https://management.azure.com/.default`, or this
    server's own URL as the cloud metadata document gives it, see `_identity_audience`), with
    the `client_credentials` grant or an identity's refresh token (as an Entra refresh
    token buys tokens for ARM, so one `dockyard login` serves the management API too).
    It stands where Entra ID stands for Azure: outside every registry's network rules
    (`api/network.py`), so that a registry's firewall never locks its managers out of
    the management API, which those rules do not guard either."""
    services, registry = _context(request)
    form: FormData = await request.form()
    audience = _identity_audience(request, _scopes([str(v) for v in form.getlist("scope")]))
    if audience is None:
        wanted = ", ".join(f"{a}/.default" for a in (*IDENTITY_AUDIENCES, own_url(request)))
        raise ScopeInvalid(f"scope must be one of {wanted}")
    grant = form.get("grant_type", "")
    if grant == "client_credentials":
        principal = await _client(request, services, registry, form)
    elif grant == "refresh_token":
        principal = _from_refresh(services, registry, str(form.get("refresh_token", "")))
        if principal.kind != "identity":
            raise GrantInvalid(
                f"only an identity's refresh token buys a token for {audience}; this one "
                f"is {principal.name}'s: log in with an identity's client id and secret"
            )
    else:
        raise GrantUnsupported(
            f"unsupported grant_type {grant!r}; use client_credentials or refresh_token"
        )
    return _identity_token(services, principal, audience)


async def _client(
    request: Request, services: Services, registry: RegistryRecord, form: FormData
) -> Principal:
    """The identity the client-credentials grant names, once its secret checks out."""
    return await password_login(
        request,
        services,
        registry,
        str(form.get("client_id", "")),
        str(form.get("client_secret", "")),
        identities_only=True,
    )


def _identity_audience(request: Request, scopes: list[str]) -> str | None:
    """The identity audience a scope names (`https://management.azure.com/.default`).
    A scope may end in `//.default`, as az writes it from a cloud's audience that ends in
    a slash; and this server's own URL, the management audience of the cloud metadata
    document (`management/api/cloud.py`), names the management audience."""
    own = own_url(request).lower()
    for scope in scopes:
        audience = scope.removesuffix("/.default").removesuffix("/")
        if audience in IDENTITY_AUDIENCES:
            return audience
        if audience.lower() == own:
            return MANAGEMENT_AUDIENCE
    return None


def own_url(request: Request) -> str:
    """This server as the client reached it: `https://HOST:PORT`."""
    return str(request.base_url).rstrip("/")


def _identity_token(services: Services, principal: Principal, audience: str) -> Response:
    token, claims = services.tokens.identity_token(principal.subject.partition(":")[2], audience)
    return _json(
        {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
        }
    )


def _from_refresh(services: Services, registry: RegistryRecord, token: str) -> Principal:
    try:
        return services.authenticator.refresh_principal(registry, token)
    except AuthenticationFailed as exc:
        raise GrantInvalid(f"refresh token refused: {exc.reason}") from None


@oauth_errors
async def exchange(request: Request) -> Response:
    """An identity's access token becomes a refresh token for this registry: a token this
    server issued (client-credentials grant), or one from a trusted OpenID Connect issuer
    whose subject names a Dockyard identity."""
    services, registry = _context(request)
    form = await request.form()
    grant = form.get("grant_type", "")
    if grant not in ("access_token", "access_token_refresh_token"):
        raise GrantUnsupported(f"unsupported grant_type {grant!r}; use access_token")
    token = str(form.get("access_token", ""))
    try:
        principal = await services.logins.exchange(
            registry, token, client_address(request), request.headers.get("user-agent")
        )
    except AuthenticationFailed as exc:
        raise GrantInvalid(f"access token refused: {exc}") from None
    return _json({"refresh_token": _refresh(services, registry, principal)})


async def jwks(request: Request) -> Response:
    services: Services = request.app.state.services
    return _json(services.keys.jwks())


routes = [
    Route("/oauth2/token", token_get, methods=["GET"]),
    Route("/oauth2/token", token_post, methods=["POST"]),
    Route("/oauth2/v2.0/token", identity_token_post, methods=["POST"]),
    Route("/oauth2/exchange", exchange, methods=["POST"]),
    Route("/oauth2/jwks", jwks, methods=["GET"]),
]
