"""`registries/scopeMaps` and `registries/tokens` (with the `generateCredentials` action):
the repository-scoped tokens of `auth.administration`, as ARM resources; their lists are
paged on the name index (`paging.py`). A token's
passwords are made when it is created and shown only by `generateCredentials`, which
replaces one (or both) and returns the new values once; an update whose
`credentials.passwords` leaves one out deletes it (`az acr token credential delete`)."""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.administration import (
    TOKEN_PASSWORD_NAMES,
    Administration,
    ScopeMapRecord,
    TokenRecord,
)
from dockyard.auth.management import READ, WRITE
from dockyard.management.api.arm import (
    SUCCEEDED,
    Body,
    InvalidRequestContent,
    Status,
    child_id,
    child_name,
    endpoint,
    json_body,
    json_response,
    not_found,
    registry_for,
    registry_id,
    require_found,
    section,
    services_of,
    time_text,
)
from dockyard.management.api.paging import page_from_index, page_response
from dockyard.management.api.registries import REGISTRY
from dockyard.management.registry_resources import RegistryResource

SCOPE_MAP_TYPE = "Microsoft.ContainerRegistry/registries/scopeMaps"
TOKEN_TYPE = "Microsoft.ContainerRegistry/registries/tokens"


def _scope_map_shape(resource: RegistryResource, record: ScopeMapRecord) -> dict[str, Any]:
    return {
        "id": child_id(resource, "scopeMaps", record.name),
        "name": record.name,
        "type": SCOPE_MAP_TYPE,
        "properties": {
            "description": record.description,
            "type": record.kind,
            "creationDate": time_text(record.created_at),
            "provisioningState": SUCCEEDED,
            "actions": record.actions,
        },
    }


def _token_shape(
    request: Request, resource: RegistryResource, record: TokenRecord
) -> dict[str, Any]:
    passwords = services_of(request).administration.token_passwords(record.id)
    return {
        "id": child_id(resource, "tokens", record.name),
        "name": record.name,
        "type": TOKEN_TYPE,
        "properties": {
            "creationDate": time_text(record.created_at),
            "provisioningState": SUCCEEDED,
            "scopeMapId": child_id(resource, "scopeMaps", record.scope_map),
            "status": "enabled" if record.enabled else "disabled",
            "credentials": {
                "certificates": [],
                "passwords": [
                    {
                        "name": p.name,
                        "creationTime": time_text(p.created_at),
                        "expiry": time_text(p.expires_at),
                    }
                    for p in passwords
                ],
            },
        },
    }


def _scope_map(request: Request, resource: RegistryResource) -> ScopeMapRecord | None:
    name = request.path_params["scope_map"]
    found = services_of(request).administration.scope_maps(resource.record.id, name)
    return found[0] if found else None


def _token(request: Request, resource: RegistryResource) -> TokenRecord | None:
    name = request.path_params["token"]
    found = services_of(request).administration.tokens(resource.record.id, name)
    return found[0] if found else None


class _ScopeMapProperties(Body):
    actions: list[str] | None = None
    description: str | None = None


class ScopeMapBody(Body):
    properties: _ScopeMapProperties | None = None


class _TokenPassword(Body):
    name: str | None = None


class _TokenCredentials(Body):
    certificates: list[Any] | None = None
    passwords: list[_TokenPassword] | None = None


class _TokenProperties(Body):
    scopeMapId: str | None = None
    status: Status | None = None
    credentials: _TokenCredentials | None = None


class TokenBody(Body):
    properties: _TokenProperties | None = None


class GenerateCredentialsBody(Body):
    tokenId: str = ""
    expiry: str | None = None
    name: str | None = None


def parse_expiry(value: str | None, field: str) -> datetime | None:
    """An ISO 8601 moment (UTC unless it says), in UTC: the database keeps no offset
    (SQLite's timestamps are naive), so one left on would be dropped, not applied."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequestContent(
            f"{field} must be an ISO 8601 date and time between years 1 and 9999"
        ) from None


# -- scope maps ----------------------------------------------------------------------------


@endpoint
async def list_scope_maps(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    read = functools.partial(services_of(request).administration.scope_maps, resource.record.id)
    page, after = page_from_index(request, read, lambda r: r.name)
    return page_response(request, [_scope_map_shape(resource, r) for r in page], after)


@endpoint
async def get_scope_map(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    record = require_found(
        _scope_map(request, resource), "scope map", request.path_params["scope_map"]
    )
    return json_response(_scope_map_shape(resource, record))


@endpoint
async def put_scope_map(request: Request) -> Response:
    """PUT creates or updates a scope map (what it leaves out kept); PATCH only updates."""
    resource, _ = await registry_for(request, WRITE)
    existing = _scope_map(request, resource)
    patch = request.method == "PATCH"
    if patch and existing is None:
        raise not_found("scope map", request.path_params["scope_map"])
    properties = section(await json_body(request, ScopeMapBody), "properties")
    actions = properties.get("actions", existing.actions if existing else None)
    if actions is None:
        raise InvalidRequestContent("properties.actions must be a list of strings")
    description = properties.get("description", existing.description if existing else None)
    services = services_of(request)
    await asyncio.to_thread(
        services.administration.put_scope_map,
        resource.record,
        request.path_params["scope_map"],
        actions,
        description,
    )
    record = _scope_map(request, resource)
    assert record is not None
    return json_response(
        _scope_map_shape(resource, record), status_code=200 if existing or patch else 201
    )


@endpoint
async def delete_scope_map(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    if _scope_map(request, resource) is None:
        return Response(status_code=204)
    services = services_of(request)
    services.administration.delete_scope_map(resource.record, request.path_params["scope_map"])
    return Response(status_code=200)


# -- tokens --------------------------------------------------------------------------------


def _scope_map_name(resource: RegistryResource, scope_map_id: Any) -> str:
    """A scope map's ARM id, which must name one of this registry's."""
    return child_name(resource, "scopeMaps", scope_map_id, "scopeMapId", "scope map")


def _status(value: str | None) -> bool | None:
    return None if value is None else value == "enabled"


@endpoint
async def list_tokens(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    read = functools.partial(services_of(request).administration.tokens, resource.record.id)
    page, after = page_from_index(request, read, lambda r: r.name)
    return page_response(request, [_token_shape(request, resource, r) for r in page], after)


@endpoint
async def get_token(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    record = require_found(_token(request, resource), "token", request.path_params["token"])
    return json_response(_token_shape(request, resource, record))


@endpoint
async def put_token(request: Request) -> Response:
    """PUT creates a token on a scope map or updates one; PATCH only updates."""
    resource, _ = await registry_for(request, WRITE)
    existing = _token(request, resource)
    if request.method == "PATCH" and existing is None:
        raise not_found("token", request.path_params["token"])
    properties = section(await json_body(request, TokenBody), "properties")
    if section(properties, "credentials").get("certificates"):
        raise InvalidRequestContent("token certificates are not supported on this server")
    administration = services_of(request).administration
    registry, name = resource.record, request.path_params["token"]
    enabled = _status(properties.get("status"))
    scope_map_id = properties.get("scopeMapId")
    if existing is None:
        scope_map = _scope_map_name(resource, scope_map_id)
        await asyncio.to_thread(administration.create_token, registry, name, scope_map)
    elif scope_map_id is not None:
        scope_map = _scope_map_name(resource, scope_map_id)
        administration.set_token_scope_map(registry, name, scope_map)
    if enabled is not None:
        administration.set_token_enabled(registry, name, enabled)
    kept = section(properties, "credentials").get("passwords")
    if existing is not None and kept is not None:
        _drop_passwords(administration, resource, existing, {p.get("name") for p in kept})
    record = _token(request, resource)
    assert record is not None
    return json_response(
        _token_shape(request, resource, record), status_code=201 if existing is None else 200
    )


def _drop_passwords(
    administration: Administration, resource: RegistryResource, token: TokenRecord, kept: set[Any]
) -> None:
    """`credentials.passwords` on an update lists the passwords to keep: the others are
    deleted, as `az acr token credential delete` asks (it sends the rest)."""
    for password in administration.token_passwords(token.id):
        if password.name not in kept:
            administration.delete_token_password(resource.record, token.name, password.name)


@endpoint
async def delete_token(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    if _token(request, resource) is None:
        return Response(status_code=204)
    services_of(request).administration.delete_token(resource.record, request.path_params["token"])
    return Response(status_code=200)


@endpoint
async def generate_credentials(request: Request) -> Response:
    """`{"tokenId", "expiry"?, "name"?}`: new values for the named password, or both."""
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, GenerateCredentialsBody)
    prefix = f"{registry_id(resource)}/tokens/".lower()
    token_id = body.get("tokenId", "")
    if not token_id.lower().startswith(prefix):
        raise InvalidRequestContent(f"tokenId must be a token of this registry: {prefix}…")
    name = token_id[len(prefix) :]
    found = services_of(request).administration.tokens(resource.record.id, name)
    if not found:
        raise not_found("token", name)
    expiry = parse_expiry(body.get("expiry"), "expiry")
    names = [body["name"]] if body.get("name") else list(TOKEN_PASSWORD_NAMES)
    administration = services_of(request).administration
    values = {
        password_name: await asyncio.to_thread(
            administration.regenerate_token_password,
            resource.record,
            name,
            password_name,
            expiry,
        )
        for password_name in names
    }
    kept = services_of(request).administration.token_passwords(found[0].id)
    return json_response(
        {
            "username": name,
            "passwords": [
                {
                    "name": p.name,
                    "value": values[p.name],
                    "creationTime": time_text(p.created_at),
                    "expiry": time_text(p.expires_at),
                }
                for p in kept
                if p.name in values
            ],
        }
    )


SCOPE_MAP = REGISTRY + "/scopeMaps/{scope_map}"
TOKEN = REGISTRY + "/tokens/{token}"

routes = [
    Route(REGISTRY + "/scopeMaps", list_scope_maps, methods=["GET"]),
    Route(SCOPE_MAP, get_scope_map, methods=["GET"]),
    Route(SCOPE_MAP, put_scope_map, methods=["PUT", "PATCH"]),
    Route(SCOPE_MAP, delete_scope_map, methods=["DELETE"]),
    Route(REGISTRY + "/tokens", list_tokens, methods=["GET"]),
    Route(TOKEN, get_token, methods=["GET"]),
    Route(TOKEN, put_token, methods=["PUT", "PATCH"]),
    Route(TOKEN, delete_token, methods=["DELETE"]),
    Route(REGISTRY + "/generateCredentials", generate_credentials, methods=["POST"]),
]
