"""`Microsoft.Authorization/roleAssignments` at a registry's scope
(`{registry id}/providers/Microsoft.Authorization/roleAssignments/{id}`) and at a
subscription's, which stands for the whole server (Dockyard has one directory): the role
assignments of `auth.administration`, as ARM shows them.

A role definition is named by Azure's id for the built-in role where Dockyard knows it
(`.../roleDefinitions/<guid>` or the bare guid), or by the role's name; roles Azure has no
id for here get a stable one derived from the name. The principal is a Dockyard identity
(its id, as the token's `oid` says). An assignment limited to some repositories carries
ACR's ABAC condition on the repository name, in the two forms Dockyard has (one name:
`StringEqualsIgnoreCase`, a prefix: `StringStartsWithIgnoreCase '<prefix>/'`), both ways.
Beside ARM's fields, `roleDefinitionName` and `principalName` say the role and the
identity in words, as `az role assignment list` shows them."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.auth.administration import RoleAssignmentRecord
from dockyard.auth.management import ASSIGN_ROLES, READ
from dockyard.auth.permissions import ROLES
from dockyard.common.errors import Conflict
from dockyard.management.api.arm import (
    Body,
    InvalidRequestContent,
    caller,
    endpoint,
    json_body,
    json_response,
    registry_for,
    registry_id,
    require,
    section,
    services_of,
    time_text,
)
from dockyard.management.api.registries import REGISTRY
from dockyard.management.registry_resources import RegistryResource, ResourceNotFound

ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
_AZURE_ROLE_IDS = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3c48-4a8f-9e2c-ef1c6dafab0b",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "AcrDelete": "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
    "AcrImageSigner": "6cef56e8-d556-48e5-a04f-b8e64114680f",
    "AcrQuarantineReader": "cdda3590-29a3-44f6-95f2-9f980659eb04",
    "AcrQuarantineWriter": "c8d4ff99-41c3-41a8-9f60-21dfdad59608",
}
ROLE_IDS = {
    role: _AZURE_ROLE_IDS.get(role) or str(uuid.uuid5(uuid.NAMESPACE_URL, f"dockyard:role:{role}"))
    for role in ROLES
}
_ROLE_BY_ID = {guid: role for role, guid in ROLE_IDS.items()}
_PRINCIPAL_TYPES = {"user": "User", "servicePrincipal": "ServicePrincipal"}


_REPOSITORY_NAME = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]"
_CONDITION = re.compile(
    re.escape(_REPOSITORY_NAME) + r" (StringEqualsIgnoreCase|StringStartsWithIgnoreCase) '([^']+)'"
)


def _condition(repository: str | None) -> str | None:
    if repository is None or repository == "*":
        return None
    if repository.endswith("/*"):
        return f"{_REPOSITORY_NAME} StringStartsWithIgnoreCase '{repository[:-1]}'"
    return f"{_REPOSITORY_NAME} StringEqualsIgnoreCase '{repository}'"


class _AssignmentProperties(Body):
    principalId: str | None = None
    roleDefinitionId: str | None = None
    condition: str | None = None


class AssignmentBody(Body):
    properties: _AssignmentProperties | None = None


def _repository(condition: str | None) -> str | None:
    """The repository pattern (`NAME` or `PREFIX/*`) of a condition `_condition` makes."""
    if not condition:
        return None
    matched = _CONDITION.fullmatch(condition.strip())
    if matched is None or (matched[1] == "StringStartsWithIgnoreCase") != matched[2].endswith("/"):
        raise InvalidRequestContent(
            f"unsupported condition {condition!r}: only {_REPOSITORY_NAME} "
            "StringEqualsIgnoreCase 'NAME' or StringStartsWithIgnoreCase 'PREFIX/'"
        )
    return matched[2] + "*" if matched[2].endswith("/") else matched[2]


def _shape(
    request: Request, scope: str, subscription: str, record: RoleAssignmentRecord
) -> dict[str, Any]:
    identity = services_of(request).administration.identity(record.identity_id)
    condition = _condition(record.repository)
    properties: dict[str, Any] = {
        "roleDefinitionId": f"/subscriptions/{subscription}/providers/Microsoft.Authorization"
        f"/roleDefinitions/{ROLE_IDS.get(record.role, record.role)}",
        "principalId": record.identity_id,
        "principalType": _PRINCIPAL_TYPES.get(identity.kind if identity else "", "User"),
        "principalName": identity.name if identity else None,
        "roleDefinitionName": record.role,
        "scope": scope,
        "createdOn": time_text(record.created_at),
    }
    if condition is not None:
        properties |= {"condition": condition, "conditionVersion": "2.0"}
    return {
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{record.id}",
        "name": record.id,
        "type": ASSIGNMENT_TYPE,
        "properties": properties,
    }


def _role(definition: Any) -> str:
    text = str(definition or "").rstrip("/").rsplit("/", 1)[-1]
    role = _ROLE_BY_ID.get(text.lower()) or (text if text in ROLES else None)
    if role is None:
        raise InvalidRequestContent(f"unknown role definition {definition!r}")
    return role


async def _scope(request: Request, action: str) -> tuple[RegistryResource | None, str]:
    """The registry the path names (None: the server) and its ARM scope string."""
    subscription = request.path_params["subscription"]
    if "registry" in request.path_params:
        resource, _ = await registry_for(request, action)
        return resource, registry_id(resource)
    require(request, await caller(request), None, action)
    return None, f"/subscriptions/{subscription}"


def _assignments(request: Request, resource: RegistryResource | None) -> list:
    store = services_of(request).administration
    if resource is not None:
        return store.role_assignments(resource.record.id)
    return [a for a in store.role_assignments() if a.registry_id is None]


def _assignment(request: Request, resource: RegistryResource | None) -> RoleAssignmentRecord | None:
    wanted = request.path_params["assignment"]
    return next((a for a in _assignments(request, resource) if a.id == wanted), None)


@endpoint
async def list_assignments(request: Request) -> Response:
    resource, scope = await _scope(request, READ)
    subscription = request.path_params["subscription"]
    return json_response(
        {
            "value": [
                _shape(request, scope, subscription, a) for a in _assignments(request, resource)
            ]
        }
    )


@endpoint
async def get_assignment(request: Request) -> Response:
    resource, scope = await _scope(request, READ)
    found = _assignment(request, resource)
    if found is None:
        raise ResourceNotFound(f"role assignment {request.path_params['assignment']} not found")
    return json_response(_shape(request, scope, request.path_params["subscription"], found))


@endpoint
async def put_assignment(request: Request) -> Response:
    """Create (201). ARM's assignments are immutable: an existing id is a conflict."""
    resource, scope = await _scope(request, ASSIGN_ROLES)
    assignment = request.path_params["assignment"]
    try:
        uuid.UUID(assignment)
    except ValueError:
        raise InvalidRequestContent("a role assignment's name must be a GUID") from None
    if any(a.id == assignment for a in services_of(request).administration.role_assignments()):
        raise RoleAssignmentExists(f"the role assignment {assignment} already exists")
    properties = section(await json_body(request, AssignmentBody), "properties")
    principal = properties.get("principalId") or ""
    await asyncio.to_thread(
        services_of(request).administration.assign_role,
        None if resource is None else resource.record,
        principal,
        _role(properties.get("roleDefinitionId")),
        _repository(properties.get("condition")),
        assignment,
    )
    created = _assignment(request, resource)
    assert created is not None
    return json_response(
        _shape(request, scope, request.path_params["subscription"], created), status_code=201
    )


@endpoint
async def delete_assignment(request: Request) -> Response:
    resource, scope = await _scope(request, ASSIGN_ROLES)
    found = _assignment(request, resource)
    if found is None:
        return Response(status_code=204)
    services_of(request).administration.remove_role_assignment(found.id)
    return json_response(_shape(request, scope, request.path_params["subscription"], found))


class RoleAssignmentExists(Conflict):
    code = "RoleAssignmentExists"


_AT_REGISTRY = REGISTRY + "/providers/Microsoft.Authorization/roleAssignments"
_AT_SERVER = "/subscriptions/{subscription}/providers/Microsoft.Authorization/roleAssignments"

routes = [
    route
    for base in (_AT_REGISTRY, _AT_SERVER)
    for route in (
        Route(base, list_assignments, methods=["GET"]),
        Route(base + "/{assignment}", get_assignment, methods=["GET"]),
        Route(base + "/{assignment}", put_assignment, methods=["PUT"]),
        Route(base + "/{assignment}", delete_assignment, methods=["DELETE"]),
    )
]
