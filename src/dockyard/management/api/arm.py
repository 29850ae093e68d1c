"""What every management (ARM) route shares: the mandatory `api-version`, the caller's
bearer token and what it may do, resource ids, JSON bodies, and ARM's error shape.

Long-running operations: every Dockyard operation completes before its answer, so each
uses the synchronous form ARM allows (PUT: 201 created or 200 updated with
`provisioningState: Succeeded`; DELETE: 200, or 204 when there was nothing; POST
actions: 200). `azure-mgmt-core`'s pollers see a terminal state in the first response
and never poll."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from dockyard.auth.administration import InvalidChange
from dockyard.auth.management import MANAGEMENT_AUDIENCE
from dockyard.auth.principals import AuthenticationFailed
from dockyard.common.errors import Denied, RegistryError, RequestInvalid, Unauthorized
from dockyard.management.api.errors import arm_error_response
from dockyard.management.registry_resources import Placement, RegistryResource, ResourceNotFound
from dockyard.services import Services

PROVIDER = "Microsoft.ContainerRegistry"
SUCCEEDED = "Succeeded"

Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def services_of(request: Request) -> Services:
    return request.app.state.services


def endpoint(handler: Handler) -> Handler:
    """A management route: `api-version` checked first, and any domain error answered in
    ARM's shape (`{"error": {"code", "message"}}`), never the registry API's."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            version = request.query_params.get("api-version")
            if not version:
                raise MissingApiVersion(
                    "the api-version query parameter (?api-version=) is required for all requests"
                )
            if not _API_VERSION.fullmatch(version):
                raise InvalidApiVersion(
                    f"the api-version {version!r} is invalid: give a date, YYYY-MM-DD, "
                    "or a preview's, YYYY-MM-DD-preview"
                )
            return await handler(request)
        except (RegistryError, InvalidChange) as exc:
            return arm_error_response(exc, _challenge(request, exc))

    return run


# ARM's api-versions: a date, maybe a stage (`2025-03-01-preview`); ASCII only, so that
# handlers may echo it (importImage's Location) into a header.
_API_VERSION = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(-[A-Za-z]+)?")


class MissingApiVersion(RequestInvalid):
    code = "MissingApiVersionParameter"


class InvalidApiVersion(RequestInvalid):
    code = "InvalidApiVersionParameter"


def _challenge(request: Request, error: Exception) -> dict[str, str]:
    if not isinstance(error, Unauthorized):
        return {}
    realm = f"{request.url.scheme}://{request.headers.get('host', '')}/oauth2/token"
    return {"WWW-Authenticate": f'Bearer authorization_uri="{realm}", error="invalid_token"'}


def placement(request: Request) -> Placement:
    return Placement(
        request.path_params["subscription"], request.path_params.get("resource_group", "")
    )


def registry_id(resource: RegistryResource) -> str:
    p = resource.placement
    return (
        f"/subscriptions/{p.subscription_id}/resourceGroups/{p.resource_group}"
        f"/providers/{PROVIDER}/registries/{resource.record.name}"
    )


def child_id(resource: RegistryResource, collection: str, name: str) -> str:
    """The id of a registry's child resource (`collection`: `tokens`, `cacheRules`, ...)."""
    return f"{registry_id(resource)}/{collection}/{name}"


def child_name(
    resource: RegistryResource, collection: str, value: Any, field: str, kind: str
) -> str:
    """The name in `value`, the id a body's `field` gives, which must be one of this
    registry's `collection` (a `kind`)."""
    prefix = child_id(resource, collection, "").lower()
    text = str(value or "")
    if not text.lower().startswith(prefix) or "/" in text[len(prefix) :]:
        raise InvalidRequestContent(f"{field} must be a {kind} of this registry: {prefix}…")
    return text[len(prefix) :]


def not_found(kind: str, name: str) -> ResourceNotFound:
    """ARM's 404 for a registry's child resource (a `kind`, e.g. "scope map")."""
    return ResourceNotFound(f"The {kind} '{name}' was not found in the registry.")


def require_found(found: T | None, kind: str, name: str) -> T:
    """`found`, the registry's `kind` named `name` as looked up; 404 if there is none."""
    if found is None:
        raise not_found(kind, name)
    return found


def time_text(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


class Body(BaseModel):
    """A request body's schema: the JSON type of every field a handler reads, checked
    strictly (`"yes"` is no boolean, `1.0` no whole number) by `json_body` before the
    handler reads any of it, so a value of the wrong type anywhere is ARM's 400 naming
    its field rather than an error deep in a handler, and nothing is stored. Keys a
    schema does not name are ignored, as ARM ignores them."""

    model_config = ConfigDict(strict=True, extra="ignore")


# A JSON integer that fits the database's 64-bit integers.
Integer = Annotated[int, Field(ge=-(2**63), lt=2**63)]
Status = Literal["enabled", "disabled"]


async def json_body(request: Request, shape: type[Body]) -> dict[str, Any]:
    """The request's JSON object as `shape` reads it: the fields the client sent (nulls
    kept, so a handler can tell "leave it" from "clear it"), each of the type `shape`
    names; else ARM's 400 naming the fields that are not (the first five)."""
    raw = await request.body()
    try:
        body = shape.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise InvalidRequestContent(_problems(exc)) from None
    return body.model_dump(exclude_unset=True)


def _problems(error: ValidationError) -> str:
    problems = [
        f"{'.'.join(str(part) for part in problem['loc']) or 'the body'}: {problem['msg']}"
        for problem in error.errors(include_url=False, include_input=False)[:_MAX_PROBLEMS]
    ]
    return "the request content was invalid: " + "; ".join(problems)


_MAX_PROBLEMS = 5


class InvalidRequestContent(RequestInvalid):
    code = "InvalidRequestContent"


def section(body: dict[str, Any], key: str) -> dict[str, Any]:
    """`body[key]`, an object of a body `json_body` checked; `{}` when absent or null."""
    return body.get(key) or {}


# -- who is calling ------------------------------------------------------------------------


class AuthorizationFailed(Denied):
    code = "AuthorizationFailed"


async def caller(request: Request) -> str | None:
    """The identity id of the bearer token's holder (None: authentication is off). The
    token is an identity token for the management audience, as `DockyardCredential`
    buys with the SDK's default scope `https://management.azure.com/.default`."""
    services = services_of(request)
    if not services.settings.auth.enabled:
        return None
    kind, _, token = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "bearer" or not token:
        raise Unauthorized("authentication required: send a bearer token for the management API")
    try:
        default = services.registries.for_host("")
        principal = await services.logins.identity(default, token, MANAGEMENT_AUDIENCE)
    except AuthenticationFailed as exc:
        raise Unauthorized(f"the access token is not valid: {exc}") from None
    return principal.subject.partition(":")[2]


def require(request: Request, identity: str | None, registry: int | None, action: str) -> None:
    """Refuse unless the caller may do `action` on the registry (None: the server)."""
    if identity is None:
        return
    allowed = services_of(request).management_access.actions(identity, registry)
    if action not in allowed:
        scope = "the server" if registry is None else "this registry"
        raise AuthorizationFailed(
            f"the client {identity} does not have authorization to perform {action} on "
            f"{scope} ({request.url.path}); an Owner can assign it a role"
        )


async def registry_for(request: Request, action: str) -> tuple[RegistryResource, str | None]:
    """The registry the path names, once the caller may do `action` on it. A caller who
    may not gets 403 whether or not it exists; one who may gets 404 if it does not."""
    identity = await caller(request)
    services = services_of(request)
    found = services.registry_resources.find(placement(request), request.path_params["registry"])
    if found is None:
        require(request, identity, None, action)
        raise ResourceNotFound(
            f"The Resource '{PROVIDER}/registries/{request.path_params['registry']}' under "
            f"resource group '{request.path_params['resource_group']}' was not found."
        )
    require(request, identity, found.record.id, action)
    return found, identity
