"""`Microsoft.ContainerRegistry/registries`: create, update, delete, get and list, and the
registry actions `listCredentials`, `regenerateCredential`, `listUsages` and
`checkNameAvailability`, in ARM's JSON shapes (the 2025-11-01 api-version's).

Dockyard's extensions: a PATCH may carry `properties.storageQuotaBytes`, the registry's
own storage quota (null: its tier's limit again); listUsages' `Size` limit shows it.
`properties.policies.scanPolicy` (`status`: scan on push; `quarantineWriter`) and
`properties.policies.vulnerabilityPolicy` (`status`, `severity`, `allowlist`,
`repositories`: the vulnerability pull policy) are shown and may be set by a PUT or
PATCH; a client that does not know them (az) leaves them as they are.
`properties.policies.trustPolicy` keeps ACR's `type` (Notary) and `status`, which turns
enforcement of the registry's signature trust policy on or off (`signing.trust`), and
adds `document`: the Notation-style trust policy document (docs/signing.md), shown back
when set; a body may set the document and the status together."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.administration import Credentials
from dockyard.auth.management import READ, WRITE
from dockyard.core.registries import regional_host
from dockyard.management.api.arm import (
    PROVIDER,
    SUCCEEDED,
    Body,
    Integer,
    InvalidRequestContent,
    Status,
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
from dockyard.management.api.paging import page_of, page_response
from dockyard.management.registry_resources import (
    EncryptionChange,
    EncryptionRow,
    NetworkRuleSet,
    Policy,
    PolicyChange,
    RegistryChange,
    RegistryResource,
    ScanningChange,
    parse_network_rule_set,
)
from dockyard.services import Services
from dockyard.signing.trust import RegistryTrust

RESOURCE_TYPE = f"{PROVIDER}/registries"


# -- wire shapes ---------------------------------------------------------------------------


def _status(enabled: bool) -> str:
    return "enabled" if enabled else "disabled"


def _policy_shape(policy: Policy, days_field: str) -> dict[str, Any]:
    return {
        days_field: policy.days,
        "status": _status(policy.enabled),
        "lastUpdatedTime": time_text(policy.enabled_at),
    }


def _trust_shape(trust: RegistryTrust) -> dict[str, Any]:
    shape: dict[str, Any] = {"type": "Notary", "status": _status(trust.enabled)}
    if trust.policy is not None:
        shape["document"] = trust.policy.document
    return shape


def registry_shape(resource: RegistryResource, trust: RegistryTrust) -> dict[str, Any]:
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
                "quarantinePolicy": {"status": _status(resource.quarantine_enabled)},
                "trustPolicy": _trust_shape(trust),
                "retentionPolicy": _policy_shape(resource.retention, "days"),
                "softDeletePolicy": _policy_shape(resource.soft_delete, "retentionDays"),
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
                "scanPolicy": {
                    "status": _status(resource.scanning.scan_on_push),
                    "quarantineWriter": _status(resource.scanning.quarantine_writer),
                },
                "vulnerabilityPolicy": {
                    "status": _status(resource.scanning.block_enabled),
                    "severity": resource.scanning.block_severity,
                    "allowlist": list(resource.scanning.allowlist),
                    "repositories": list(resource.scanning.repositories),
                },
            },
            "encryption": _encryption_shape(resource.encryption),
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


def _encryption_shape(found: EncryptionRow | None) -> dict[str, Any]:
    """ACR's `encryption`: `keyRotationEnabled` when the key is named without a version
    (its newest version is followed)."""
    if found is None:
        return {"status": "disabled"}
    return {
        "status": "enabled",
        "keyVaultProperties": {
            "keyIdentifier": found.key_identifier,
            "versionedKeyIdentifier": found.versioned_key_identifier,
            "identity": found.identity,
            "keyRotationEnabled": found.key_identifier != found.versioned_key_identifier,
            "lastKeyRotationTimestamp": time_text(found.last_rotation_at),
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


class _Switch(Body):
    status: Status | None = None


class _KeyVaultProperties(Body):
    keyIdentifier: str | None = None
    identity: str | None = None


class _Encryption(_Switch):
    keyVaultProperties: _KeyVaultProperties | None = None


class _Retention(_Switch):
    days: Integer | None = None


class _SoftDelete(_Switch):
    retentionDays: Integer | None = None


class _ScanPolicy(_Switch):
    quarantineWriter: Status | None = None


class _VulnerabilityPolicy(_Switch):
    severity: str | None = None
    allowlist: list[str] | None = None
    repositories: list[str] | None = None


class _TrustPolicy(_Switch):
    type: Literal["Notary"] | None = None
    document: dict[str, Any] | None = None


class _Policies(Body):
    quarantinePolicy: _Switch | None = None
    trustPolicy: _TrustPolicy | None = None
    retentionPolicy: _Retention | None = None
    softDeletePolicy: _SoftDelete | None = None
    scanPolicy: _ScanPolicy | None = None  # a Dockyard extension
    vulnerabilityPolicy: _VulnerabilityPolicy | None = None  # a Dockyard extension


class _IpRule(Body):
    action: Literal["Allow"] = "Allow"
    value: str = ""


class _NetworkRules(Body):
    defaultAction: str = "Allow"
    ipRules: list[_IpRule] | None = None


class _Properties(Body):
    adminUserEnabled: bool | None = None
    anonymousPullEnabled: bool | None = None
    publicNetworkAccess: Literal["Enabled", "Disabled"] | None = None
    networkRuleSet: _NetworkRules | None = None
    policies: _Policies | None = None
    encryption: _Encryption | None = None
    dataEndpointEnabled: bool | None = None
    storageQuotaBytes: Integer | None = None  # a Dockyard extension, PATCH only


class _Sku(Body):
    name: str | None = None


class RegistryBody(Body):
    """A registry's PUT (Registry) or PATCH (RegistryUpdateParameters)."""

    location: str | None = None
    tags: dict[str, str] | None = None
    sku: _Sku | None = None
    properties: _Properties | None = None


class _CredentialName(Body):
    name: str | None = None


class _NameRequest(Body):
    name: str = ""
    type: str | None = None


def _unsupported(properties: dict[str, Any]) -> None:
    """Refuse what Dockyard cannot do rather than pretend it did."""
    if properties.get("dataEndpointEnabled") is True:
        raise InvalidRequestContent("dataEndpointEnabled cannot be enabled on this server")


def _network(value: dict[str, Any]) -> NetworkRuleSet | None:
    if not value:
        return None
    rules = value.get("ipRules") or []
    return parse_network_rule_set(
        value.get("defaultAction", "Allow"), [rule.get("value", "") for rule in rules]
    )


def _enabled(value: str | None) -> bool | None:
    return None if value is None else value == "enabled"


def _change(body: dict[str, Any]) -> RegistryChange:
    """What a body `json_body` checked against `RegistryBody` asks for."""
    properties = section(body, "properties")
    _unsupported(properties)
    policies = section(properties, "policies")
    retention = section(policies, "retentionPolicy")
    soft_delete = section(policies, "softDeletePolicy")
    public = properties.get("publicNetworkAccess")
    return RegistryChange(
        tags=body.get("tags"),
        sku=section(body, "sku").get("name"),
        admin_user_enabled=properties.get("adminUserEnabled"),
        anonymous_pull_enabled=properties.get("anonymousPullEnabled"),
        public_network_access=None if public is None else public == "Enabled",
        network_rule_set=_network(section(properties, "networkRuleSet")),
        retention=PolicyChange(_enabled(retention.get("status")), retention.get("days")),
        soft_delete=PolicyChange(
            _enabled(soft_delete.get("status")), soft_delete.get("retentionDays")
        ),
        encryption=_encryption_change(section(properties, "encryption")),
        quarantine_enabled=_enabled(section(policies, "quarantinePolicy").get("status")),
        scanning=_scanning_change(policies),
    )


def _scanning_change(policies: dict[str, Any]) -> ScanningChange | None:
    scan = section(policies, "scanPolicy")
    vulnerability = section(policies, "vulnerabilityPolicy")
    if not scan and not vulnerability:
        return None
    return ScanningChange(
        scan_on_push=_enabled(scan.get("status")),
        quarantine_writer=_enabled(scan.get("quarantineWriter")),
        block_enabled=_enabled(vulnerability.get("status")),
        block_severity=vulnerability.get("severity"),
        allowlist=vulnerability.get("allowlist"),
        repositories=vulnerability.get("repositories"),
    )


def _encryption_change(value: dict[str, Any]) -> EncryptionChange | None:
    if not value.get("status"):
        return None
    vault = section(value, "keyVaultProperties")
    return EncryptionChange(
        value["status"] == "enabled", vault.get("keyIdentifier"), vault.get("identity")
    )


def _apply_trust(request: Request, resource: RegistryResource, body: dict[str, Any]) -> None:
    """The body's `policies.trustPolicy`: its document (null removes it) and status."""
    asked = section(section(section(body, "properties"), "policies"), "trustPolicy")
    trust = services_of(request).trust
    status = _enabled(asked.get("status"))
    if "document" in asked:
        trust.set_policy(resource.record, asked["document"], status)
    elif status is not None:
        trust.set_enabled(resource.record, status)


def registry_shape_for(request: Request, resource: RegistryResource) -> dict[str, Any]:
    services = services_of(request)
    shape = registry_shape(resource, services.trust.configuration(resource.record.id, fresh=True))
    shape["properties"].update(_regional_endpoints(services, resource))
    return shape


def _regional_endpoints(services: Services, resource: RegistryResource) -> dict[str, Any]:
    """ACR's `regionalEndpoints` and `regionalEndpointHostNames` (what `az acr login
    --endpoint REGION` picks from): a replicated registry's host name in each of its
    regions (`core.registries.regional_host`)."""
    record = resource.record
    replicas = services.replications.list(record, with_lag=False)
    hosts = [regional_host(record.name, record.login_server, r.location) for r in replicas]
    names = [host for host in hosts if host is not None] if len(replicas) > 1 else []
    return {
        "regionalEndpoints": "Enabled" if names else "Disabled",
        "regionalEndpointHostNames": names,
    }


# -- routes --------------------------------------------------------------------------------


@endpoint
async def get_registry(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    return json_response(registry_shape_for(request, resource))


async def readable_registries(request: Request) -> list[RegistryResource]:
    """The registries of the path's subscription (or of its resource group, when the
    path names one) that the caller may read."""
    identity = await caller(request)
    services = services_of(request)
    found = services.registry_resources.list(
        request.path_params["subscription"], request.path_params.get("resource_group")
    )
    access = services.management_access
    return [r for r in found if identity is None or READ in access.actions(identity, r.record.id)]


@endpoint
async def list_registries(request: Request) -> Response:
    """In a resource group, or (no `resource_group` in the path) in the subscription:
    the registries the caller may read."""
    page, after = page_of(request, await readable_registries(request), lambda r: r.record.name)
    return page_response(request, [registry_shape_for(request, r) for r in page], after)


@endpoint
async def put_registry(request: Request) -> Response:
    """Create (201) or update (200). Creating needs `write` at server scope."""
    services = services_of(request)
    body = await json_body(request, RegistryBody)
    change = _change(body)
    name = request.path_params["registry"]
    found = services.registry_resources.find(placement(request), name)
    if found is not None:
        await registry_for(request, WRITE)
        await asyncio.to_thread(_apply_trust, request, found, body)
        updated = await asyncio.to_thread(
            services.registry_resources.update, placement(request), name, change
        )
        return json_response(registry_shape_for(request, updated))
    require(request, await caller(request), None, WRITE)
    if not body.get("location"):
        raise InvalidRequestContent("location is required to create a registry")
    if change.sku is None:
        raise InvalidRequestContent("sku.name is required to create a registry")
    trust = section(section(section(body, "properties"), "policies"), "trustPolicy")
    if trust.get("status") == "enabled" or trust.get("document") is not None:
        raise InvalidRequestContent(
            "policies.trustPolicy: a new registry has no trust stores; create it, add its "
            "trust stores (dockyard trust store add), then set the trust policy"
        )
    created = await asyncio.to_thread(
        services.registry_resources.create,
        placement(request),
        name,
        body["location"],
        change,
    )
    await asyncio.to_thread(_apply_trust, request, created, body)
    return json_response(registry_shape_for(request, created), status_code=201)


@endpoint
async def patch_registry(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, RegistryBody)
    change = _change(body)
    services = services_of(request)
    properties = section(body, "properties")
    await asyncio.to_thread(_apply_trust, request, resource, body)
    if "storageQuotaBytes" in properties:
        await asyncio.to_thread(
            services.usages.set_storage_quota, resource.record, properties["storageQuotaBytes"]
        )
    updated = await asyncio.to_thread(
        services.registry_resources.update, placement(request), resource.record.name, change
    )
    return json_response(registry_shape_for(request, updated))


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
    name = (await json_body(request, _CredentialName)).get("name")
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
    body = await json_body(request, _NameRequest)
    if body.get("type") != RESOURCE_TYPE:
        raise InvalidRequestContent(f"type must be {RESOURCE_TYPE}")
    answer = services_of(request).registry_resources.check_name(body.get("name", ""))
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
