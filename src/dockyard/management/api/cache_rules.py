"""`registries/cacheRules` and `registries/credentialSets`: the pull-through cache of
`mirroring.cache_rules`, as ARM resources. A rule's source and target are fixed once made
(PATCH, or PUT of the same rule, changes only its credential set, as on ACR). A DELETE
answers 204 whether or not there was one: for these two the API allows only 202 and 204,
and the delete is done before the answer.

Dockyard has no Key Vault: a credential set's `authCredentials[0]`
(`Credential1`) carries the upstream's username in `usernameSecretIdentifier` and its
password in `passwordSecretIdentifier`, instead of the URIs of Key Vault secrets that
hold them. The password is sealed with the server's key and never shown again (a GET
leaves `passwordSecretIdentifier` out); `identity` is accepted and ignored."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.management import READ, WRITE
from dockyard.management.api.arm import (
    SUCCEEDED,
    Body,
    InvalidRequestContent,
    child_id,
    child_name,
    endpoint,
    json_body,
    json_response,
    not_found,
    registry_for,
    require_found,
    section,
    services_of,
    time_text,
)
from dockyard.management.api.paging import page_of, page_response
from dockyard.management.api.registries import REGISTRY
from dockyard.management.registry_resources import RegistryResource
from dockyard.mirroring.cache_rules import CacheRuleInvalid, CacheRuleRecord, CredentialSetRecord
from dockyard.mirroring.imports import Reader

CACHE_RULE_TYPE = "Microsoft.ContainerRegistry/registries/cacheRules"
CREDENTIAL_SET_TYPE = "Microsoft.ContainerRegistry/registries/credentialSets"
CREDENTIAL_NAME = "Credential1"


def _rule_shape(resource: RegistryResource, rule: CacheRuleRecord) -> dict[str, Any]:
    return {
        "id": child_id(resource, "cacheRules", rule.name),
        "name": rule.name,
        "type": CACHE_RULE_TYPE,
        "properties": {
            "credentialSetResourceId": None
            if rule.credential_set is None
            else child_id(resource, "credentialSets", rule.credential_set),
            "sourceRepository": rule.source_repository,
            "targetRepository": rule.target_repository,
            "creationDate": time_text(rule.created_at),
            "provisioningState": SUCCEEDED,
        },
    }


def _set_shape(resource: RegistryResource, found: CredentialSetRecord) -> dict[str, Any]:
    return {
        "id": child_id(resource, "credentialSets", found.name),
        "name": found.name,
        "type": CREDENTIAL_SET_TYPE,
        "properties": {
            "loginServer": found.login_server,
            "authCredentials": [
                {"name": CREDENTIAL_NAME, "usernameSecretIdentifier": found.username}
            ],
            "creationDate": time_text(found.created_at),
            "provisioningState": SUCCEEDED,
        },
    }


def _rule(request: Request, resource: RegistryResource) -> CacheRuleRecord | None:
    name = request.path_params["cache_rule"]
    try:
        return services_of(request).cache_rules.rules(resource.record, name)[0]
    except CacheRuleInvalid:  # none by that name
        return None


def _credential_set(request: Request, resource: RegistryResource) -> CredentialSetRecord | None:
    name = request.path_params["credential_set"]
    try:
        return services_of(request).cache_rules.credential_sets(resource.record, name)[0]
    except CacheRuleInvalid:  # none by that name
        return None


def _set_name(resource: RegistryResource, value: Any) -> str | None:
    """A credential set's ARM id, which must name one of this registry's (None: none)."""
    if value is None:
        return None
    return child_name(
        resource, "credentialSets", value, "credentialSetResourceId", "credential set"
    )


class _RuleProperties(Body):
    credentialSetResourceId: str | None = None
    sourceRepository: str | None = None
    targetRepository: str | None = None


class CacheRuleBody(Body):
    properties: _RuleProperties | None = None


class _Credential(Body):
    name: str = CREDENTIAL_NAME
    usernameSecretIdentifier: str | None = None
    passwordSecretIdentifier: str | None = None


class _SetProperties(Body):
    loginServer: str | None = None
    authCredentials: list[_Credential] | None = None


class CredentialSetBody(Body):
    properties: _SetProperties | None = None


def _login(properties: dict[str, Any]) -> tuple[str | None, str | None]:
    """(username, password) from `authCredentials`; None where not given."""
    credentials = properties.get("authCredentials")
    if credentials is None:
        return None, None
    if len(credentials) != 1 or credentials[0].get("name", CREDENTIAL_NAME) != CREDENTIAL_NAME:
        raise InvalidRequestContent(f"authCredentials holds one credential, {CREDENTIAL_NAME}")
    return (
        credentials[0].get("usernameSecretIdentifier"),
        credentials[0].get("passwordSecretIdentifier"),
    )


# -- cache rules ---------------------------------------------------------------------------


@endpoint
async def list_rules(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    rules = services_of(request).cache_rules.rules(resource.record)  # at most 1,000
    page, after = page_of(request, rules, lambda rule: rule.name)
    return page_response(request, [_rule_shape(resource, rule) for rule in page], after)


@endpoint
async def get_rule(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    found = require_found(_rule(request, resource), "cache rule", request.path_params["cache_rule"])
    return json_response(_rule_shape(resource, found))


@endpoint
async def put_rule(request: Request) -> Response:
    """PUT creates a rule or changes its credential set; PATCH only changes it. The
    caller is a new rule's author: a source that is a registry of this server is read
    as the caller, who must be able to pull it."""
    resource, identity = await registry_for(request, WRITE)
    existing = _rule(request, resource)
    name = request.path_params["cache_rule"]
    if request.method == "PATCH" and existing is None:
        raise not_found("cache rule", name)
    properties = section(await json_body(request, CacheRuleBody), "properties")
    cache_rules = services_of(request).cache_rules
    set_name = _set_name(resource, properties.get("credentialSetResourceId"))
    if existing is None:
        source, target = properties.get("sourceRepository"), properties.get("targetRepository")
        if not source or not target:
            raise InvalidRequestContent(
                "a new cache rule needs sourceRepository and targetRepository"
            )
        made = await asyncio.to_thread(
            cache_rules.create_rule,
            resource.record,
            name,
            source,
            target,
            Reader(identity),
            set_name,
        )
        return json_response(_rule_shape(resource, made), status_code=201)
    kept_values = {
        "sourceRepository": existing.source_repository,
        "targetRepository": existing.target_repository,
    }
    for field, kept in kept_values.items():
        given = properties.get(field)
        if given is not None and given != kept:
            raise InvalidRequestContent(
                f"a cache rule's {field} cannot change ({kept}); delete it and make another"
            )
    changed = existing
    if "credentialSetResourceId" in properties:
        changed = cache_rules.update_rule(resource.record, name, set_name)
    return json_response(_rule_shape(resource, changed))


@endpoint
async def delete_rule(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    if _rule(request, resource) is not None:
        services_of(request).cache_rules.delete_rule(
            resource.record, request.path_params["cache_rule"]
        )
    return Response(status_code=204)


# -- credential sets -----------------------------------------------------------------------


@endpoint
async def list_sets(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    sets = services_of(request).cache_rules.credential_sets(resource.record)
    page, after = page_of(request, sets, lambda found: found.name)
    return page_response(request, [_set_shape(resource, found) for found in page], after)


@endpoint
async def get_set(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    found = require_found(
        _credential_set(request, resource), "credential set", request.path_params["credential_set"]
    )
    return json_response(_set_shape(resource, found))


@endpoint
async def put_set(request: Request) -> Response:
    """PUT creates a credential set or changes its login; PATCH only changes it."""
    resource, _ = await registry_for(request, WRITE)
    existing = _credential_set(request, resource)
    name = request.path_params["credential_set"]
    if request.method == "PATCH" and existing is None:
        raise not_found("credential set", name)
    properties = section(await json_body(request, CredentialSetBody), "properties")
    username, password = _login(properties)
    cache_rules = services_of(request).cache_rules
    login_server = properties.get("loginServer")
    if existing is None:
        if not login_server:
            raise InvalidRequestContent("a new credential set needs loginServer")
        made = await asyncio.to_thread(
            cache_rules.create_credential_set,
            resource.record,
            name,
            login_server,
            username or "",
            password or "",
        )
        return json_response(_set_shape(resource, made), status_code=201)
    if login_server is not None and login_server.lower() != existing.login_server:
        raise InvalidRequestContent(
            f"a credential set's loginServer cannot change ({existing.login_server})"
        )
    changed = existing
    if username or password:
        changed = await asyncio.to_thread(
            cache_rules.update_credential_set, resource.record, name, username, password
        )
    return json_response(_set_shape(resource, changed))


@endpoint
async def delete_set(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    if _credential_set(request, resource) is not None:
        services_of(request).cache_rules.delete_credential_set(
            resource.record, request.path_params["credential_set"]
        )
    return Response(status_code=204)


CACHE_RULE = REGISTRY + "/cacheRules/{cache_rule}"
CREDENTIAL_SET = REGISTRY + "/credentialSets/{credential_set}"

routes = [
    Route(REGISTRY + "/cacheRules", list_rules, methods=["GET"]),
    Route(CACHE_RULE, get_rule, methods=["GET"]),
    Route(CACHE_RULE, put_rule, methods=["PUT", "PATCH"]),
    Route(CACHE_RULE, delete_rule, methods=["DELETE"]),
    Route(REGISTRY + "/credentialSets", list_sets, methods=["GET"]),
    Route(CREDENTIAL_SET, get_set, methods=["GET"]),
    Route(CREDENTIAL_SET, put_set, methods=["PUT", "PATCH"]),
    Route(CREDENTIAL_SET, delete_set, methods=["DELETE"]),
]
