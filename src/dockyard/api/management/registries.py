"""`Microsoft.ContainerRegistry/registries`: create, update, delete, get and list, and the
registry actions `listCredentials`, `regenerateCredential`, `listUsages` and
`checkNameAvailability`, in ARM's JSON shapes (the 2025-11-01 api-version's).

One Dockyard extension: a PATCH may carry `properties.storageQuotaBytes`, the registry's
own storage quota (null: its tier's limit again); listUsages' `Size` limit shows it."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.management.arm import (
    PROVIDER,
    SUCCEEDED,
    InvalidRequestContent,
    caller,
    endpoint,
    json_body,
    json_response,
    placement,
    registry_for,
    registry_id,
    require,
    section,
    services_of,
    time_text,
)
from dockyard.api.management.paging import page_of, page_response
from dockyard.auth.administration import Credentials
from dockyard.auth.management import READ, WRITE
from dockyard.core.registry_resources import (
    NetworkRuleSet,
    PolicyChange,
    RegistryChange,
    RegistryResource,
    parse_network_rule_set,
)
from dockyard.metadata.lifecycle import Policy

RESOURCE_TYPE = f"{PROVIDER}/registries"
_ENABLED = {"enabled": True, "disabled": False}
_PUBLIC = {"Enabled": True, "Disabled": False}


# -- wire shapes ---------------------------------------------------------------------------


def _status(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def _policy_shape(policy: Policy, days_field: str) -> dict[str, Any]:
    return {
        days_field: policy.days,
        "status": _status(policy.enabled),
        "lastUpdatedTime": time_text(policy.enabled_at),
    }


def registry_shape(resource: RegistryResource) -> dict[str, Any]:
    rules = resource.network_rule_set
    return {
        "id": registry_id(resource),
        "name": resource.record.name,
        "type": RESOURCE_TYPE,
        "location": resource.location,
        "tags": resource.tags,
        "sku": {"name": resource.sku, "tier": resource.sku},
        "properties": {
            "loginServer": resource.record.login_server,
            "creationDate": time_text(resource.created_at),
            "provisioningState": SUCCEEDED,
            "adminUserEnabled": resource.admin_user_enabled,
            "networkRuleSet": {
                "defaultAction": rules.default_action,
                "ipRules": [{"action": "Allow", "value": rule} for rule in rules.ip_rules],
            },
            "policies": {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": _policy_shape(resource.retention, "days"),
                "softDeletePolicy": _policy_shape(resource.soft_delete, "retentionDays"),
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
            },
            "encryption": {"status": "disabled"},
            "dataEndpointEnabled": False,
            "dataEndpointHostNames": [],
            "privateEndpointConnections": [],
            "publicNetworkAccess": "Enabled" if resource.public_network_access else "Disabled",
            "networkRuleBypassOptions": "AzureServices",
            "zoneRedundancy": "Disabled",
            "anonymousPullEnabled": resource.anonymous_pull_enabled,
            "roleAssignmentMode": "LegacyRegistryPermissions",
        },
    }


def _credentials_shape(credentials: Credentials) -> dict[str, Any]:
    return {
        "username": credentials.username,
        "passwords": [
            {"name": name, "value": value} for name, value in sorted(credentials.passwords.items())
        ],
    }


# -- request bodies ------------------------------------------------------------------------


def _choice(value: Any, choices: dict[str, bool], field: str) -> bool | None:
    if value is None:
        return None
    if value not in choices:
        raise InvalidRequestContent(f"{field} must be one of {', '.join(choices)}, not {value!r}")
    return choices[value]


def _flag(value: Any, field: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidRequestContent(f"{field} must be true or false")
    return value


def _days(value: Any, field: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidRequestContent(f"{field} must be a whole number of days")
    return value


def _unsupported(properties: dict[str, Any]) -> None:
    """Refuse what Dockyard cannot do rather than pretend it did."""
    policies = section(properties, "policies")
    wanted = {
        "policies.quarantinePolicy": section(policies, "quarantinePolicy").get("status")
        == "enabled",
        "policies.trustPolicy": section(policies, "trustPolicy").get("status") == "enabled",
        "encryption": section(properties, "encryption").get("status") == "enabled",
        "dataEndpointEnabled": properties.get("dataEndpointEnabled") is True,
    }
    for name, asked in wanted.items():
        if asked:
            raise InvalidRequestContent(f"{name} cannot be enabled on this server")


def _network(value: dict[str, Any]) -> NetworkRuleSet | None:
    if not value:
        return None
    rules = value.get("ipRules") or []
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise InvalidRequestContent("networkRuleSet.ipRules must be a list of {action, value}")
    for rule in rules:
        if rule.get("action", "Allow") != "Allow":
            raise InvalidRequestContent("an IP rule's action is always Allow")
    return parse_network_rule_set(
        str(value.get("defaultAction", "Allow")), [str(r.get("value", "")) for r in rules]
    )


def _change(body: dict[str, Any]) -> RegistryChange:
    properties = section(body, "properties")
    _unsupported(properties)
    policies = section(properties, "policies")
    retention = section(policies, "retentionPolicy")
    soft_delete = section(policies, "softDeletePolicy")
    tags = body.get("tags")
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise InvalidRequestContent("tags must be an object of strings")
    sku = section(body, "sku").get("name")
    return RegistryChange(
        tags=tags,
        sku=None if sku is None else str(sku),
        admin_user_enabled=_flag(properties.get("adminUserEnabled"), "adminUserEnabled"),
        anonymous_pull_enabled=_flag(
            properties.get("anonymousPullEnabled"), "anonymousPullEnabled"
        ),
        public_network_access=_choice(
            properties.get("publicNetworkAccess"), _PUBLIC, "publicNetworkAccess"
        ),
        network_rule_set=_network(section(properties, "networkRuleSet")),
        retention=PolicyChange(
            _choice(retention.get("status"), _ENABLED, "retentionPolicy.status"),
            _days(retention.get("days"), "retentionPolicy.days"),
        ),
        soft_delete=PolicyChange(
            _choice(soft_delete.get("status"), _ENABLED, "softDeletePolicy.status"),
            _days(soft_delete.get("retentionDays"), "softDeletePolicy.retentionDays"),
        ),
    )


# -- routes --------------------------------------------------------------------------------


@endpoint
async def get_registry(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    return json_response(registry_shape(resource))


@endpoint
async def list_registries(request: Request) -> Response:
    """In a resource group, or (no `resource_group` in the path) in the subscription:
    the registries the caller may read."""
    identity = await caller(request)
    services = services_of(request)
    found = services.registry_resources.list(
        request.path_params["subscription"], request.path_params.get("resource_group")
    )
    access = services.management_access
    readable = [
        r for r in found if identity is None or READ in access.actions(identity, r.record.id)
    ]
    page, after = page_of(request, readable, lambda r: r.record.name)
    return page_response(request, [registry_shape(r) for r in page], after)


@endpoint
async def put_registry(request: Request) -> Response:
    """Create (201) or update (200). Creating needs `write` at server scope."""
    services = services_of(request)
    body = await json_body(request)
    change = _change(body)
    name = request.path_params["registry"]
    if services.registry_resources.find(placement(request), name) is not None:
        await registry_for(request, WRITE)
        updated = await asyncio.to_thread(
            services.registry_resources.update, placement(request), name, change
        )
        return json_response(registry_shape(updated))
    require(request, await caller(request), None, WRITE)
    if not body.get("location"):
        raise InvalidRequestContent("location is required to create a registry")
    if change.sku is None:
        raise InvalidRequestContent("sku.name is required to create a registry")
    created = await asyncio.to_thread(
        services.registry_resources.create,
        placement(request),
        name,
        str(body["location"]),
        change,
    )
    return json_response(registry_shape(created), status_code=201)


@endpoint
async def patch_registry(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request)
    change = _change(body)
    services = services_of(request)
    properties = section(body, "properties")
    if "storageQuotaBytes" in properties:
        quota = properties["storageQuotaBytes"]
        if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool)):
            raise InvalidRequestContent("storageQuotaBytes must be a number of bytes, or null")
        await asyncio.to_thread(services.usages.set_storage_quota, resource.record, quota)
    updated = await asyncio.to_thread(
        services.registry_resources.update, placement(request), resource.record.name, change
    )
    return json_response(registry_shape(updated))


@endpoint
async def delete_registry(request: Request) -> Response:
    """200 once the registry, its rows and its bytes are gone; 204 if there was none."""
    services = services_of(request)
    identity = await caller(request)
    name = request.path_params["registry"]
    found = services.registry_resources.find(placement(request), name)
    require(request, identity, None if found is None else found.record.id, WRITE)
    deleted = await services.registry_resources.delete(placement(request), name)
    return Response(status_code=200 if deleted else 204)


@endpoint
async def list_credentials(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    administration = services_of(request).administration
    return json_response(_credentials_shape(administration.admin_credentials(resource.record)))


@endpoint
async def regenerate_credential(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    name = (await json_body(request)).get("name")
    administration = services_of(request).administration
    credentials = await asyncio.to_thread(
        administration.regenerate_admin_password, resource.record, str(name)
    )
    return json_response(_credentials_shape(credentials))


@endpoint
async def list_usages(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    usages = services_of(request).usages.usage(resource.record)
    return json_response(
        {
            "value": [
                {"name": u.name, "limit": u.limit, "currentValue": u.current_value, "unit": u.unit}
                for u in usages
            ]
        }
    )


@endpoint
async def check_name_availability(request: Request) -> Response:
    await caller(request)
    body = await json_body(request)
    if body.get("type") != RESOURCE_TYPE:
        raise InvalidRequestContent(f"type must be {RESOURCE_TYPE}")
    answer = services_of(request).registry_resources.check_name(str(body.get("name", "")))
    shape: dict[str, Any] = {"nameAvailable": answer.available}
    if not answer.available:
        shape |= {"reason": answer.reason, "message": answer.message}
    return json_response(shape)


SUBSCRIPTION = "/subscriptions/{subscription}/providers/" + PROVIDER
GROUP = "/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/" + PROVIDER
REGISTRY = GROUP + "/registries/{registry}"

routes = [
    Route(SUBSCRIPTION + "/registries", list_registries, methods=["GET"]),
    Route(SUBSCRIPTION + "/checkNameAvailability", check_name_availability, methods=["POST"]),
    Route(GROUP + "/registries", list_registries, methods=["GET"]),
    Route(REGISTRY, get_registry, methods=["GET"]),
    Route(REGISTRY, put_registry, methods=["PUT"]),
    Route(REGISTRY, patch_registry, methods=["PATCH"]),
    Route(REGISTRY, delete_registry, methods=["DELETE"]),
    Route(REGISTRY + "/listCredentials", list_credentials, methods=["POST"]),
    Route(REGISTRY + "/regenerateCredential", regenerate_credential, methods=["POST"]),
    Route(REGISTRY + "/listUsages", list_usages, methods=["GET"]),
]
