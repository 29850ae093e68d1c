"""The provider itself: `GET /providers/Microsoft.ContainerRegistry/operations`
(Operations - List: the operations this server serves, in ARM's shape), and ARM's
answer for anything else under `/subscriptions/` and `/providers/`, never the registry
API's: 405 with `Allow` for a method a served path does not take; else 404 saying what
is missing, as ARM does: `NoRegisteredProviderFound` for a namespace this server has no
provider for, `InvalidResourceType` for a type its providers do not serve,
`ResourceNotFound` for anything else."""

from __future__ import annotations

import itertools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

from dockyard.common.errors import Unsupported
from dockyard.management.api.arm import PROVIDER, caller, endpoint, json_response
from dockyard.management.api.errors import arm_error_response
from dockyard.management.registry_resources import ResourceNotFound

# The namespaces with routes here: this provider, and the two of Azure's whose parts the
# management API serves (role assignments, subscriptions and resource groups).
_NAMESPACES = frozenset({PROVIDER.lower(), "microsoft.authorization", "microsoft.resources"})

# (name under the provider, resource, operation, description): every operation served.
_OPERATIONS = (
    ("operations/read", "Operations", "List operations", "Lists the operations served."),
    (
        "checkNameAvailability/read",
        "Registry name",
        "Check name availability",
        "Checks whether a registry name is valid and not yet in use.",
    ),
    (
        "registries/read",
        "Registry",
        "Get or list registries",
        "Gets a container registry, or lists those of a resource group or subscription.",
    ),
    (
        "registries/write",
        "Registry",
        "Create or update registry",
        "Creates a container registry or changes its tier and settings.",
    ),
    ("registries/delete", "Registry", "Delete registry", "Deletes a container registry."),
    (
        "registries/listCredentials/action",
        "Registry",
        "List admin credentials",
        "Lists the admin user's name and passwords.",
    ),
    (
        "registries/regenerateCredential/action",
        "Registry",
        "Regenerate admin credential",
        "Makes a new value for one of the admin user's passwords.",
    ),
    (
        "registries/listUsages/read",
        "Registry",
        "List usages",
        "Lists the registry's storage use and counts against its tier's limits.",
    ),
    (
        "registries/importImage/action",
        "Registry",
        "Import image",
        "Imports an image from another registry into this one.",
    ),
    (
        "registries/generateCredentials/action",
        "Token",
        "Generate token credentials",
        "Makes new passwords for a repository-scoped token.",
    ),
    (
        "registries/logs/read",
        "Registry logs",
        "Query logs",
        "Reads the registry's repository and login events (a Dockyard extension).",
    ),
    *(
        (f"registries/{kind}/{verb}", resource, f"{title} {resource.lower()}", text)
        for kind, resource in (
            ("webhooks", "Webhook"),
            ("replications", "Replication"),
            ("tasks", "Task"),
            ("taskRuns", "Task run"),
            ("scopeMaps", "Scope map"),
            ("tokens", "Token"),
            ("cacheRules", "Cache rule"),
            ("credentialSets", "Credential set"),
        )
        for verb, title, text in (
            ("read", "Get or list", f"Gets a {resource.lower()}, or lists the registry's."),
            ("write", "Create or update", f"Creates or changes a {resource.lower()}."),
            ("delete", "Delete", f"Deletes a {resource.lower()}."),
        )
    ),
    (
        "registries/scheduleRun/action",
        "Run",
        "Schedule run",
        "Queues a quick build, a quick run or a task's run.",
    ),
    (
        "registries/listBuildSourceUploadUrl/action",
        "Run",
        "Get a build source upload URL",
        "Hands out a URL to upload a build context to.",
    ),
    ("registries/runs/read", "Run", "Get or list runs", "Gets a run, or lists the registry's."),
    ("registries/runs/write", "Run", "Update run", "Changes a run's archiving."),
    ("registries/runs/cancel/action", "Run", "Cancel run", "Cancels a queued or running run."),
    (
        "registries/runs/listLogSasUrl/action",
        "Run",
        "Get a run's log URL",
        "Hands out the URL a run's log is read from.",
    ),
    (
        "registries/tasks/listDetails/action",
        "Task",
        "List task details",
        "Gets a task with its secret properties.",
    ),
    (
        "registries/taskRuns/listDetails/action",
        "Task run",
        "List task run details",
        "Gets a task run (its secrets are never shown again once stored).",
    ),
    (
        "registries/webhooks/getCallbackConfig/action",
        "Webhook",
        "Get callback configuration",
        "Gets a webhook's service URI and custom headers.",
    ),
    ("registries/webhooks/ping/action", "Webhook", "Ping", "Sends a ping event to a webhook."),
    (
        "registries/webhooks/listEvents/action",
        "Webhook",
        "List events",
        "Lists the events a webhook sent and the answers it had.",
    ),
)


@endpoint
async def list_operations(request: Request) -> Response:
    await caller(request)
    return json_response(
        {
            "value": [
                {
                    "name": f"{PROVIDER}/{name}",
                    "isDataAction": False,
                    "display": {
                        "provider": PROVIDER,
                        "resource": resource,
                        "operation": operation,
                        "description": description,
                    },
                    "origin": "user,system",
                }
                for name, resource, operation, description in _OPERATIONS
            ]
        }
    )


class NoRegisteredProviderFound(ResourceNotFound):
    code = "NoRegisteredProviderFound"


class InvalidResourceType(ResourceNotFound):
    code = "InvalidResourceType"


class MethodNotAllowed(Unsupported):
    code = "MethodNotAllowed"


def _missing(path: str) -> ResourceNotFound:
    """What ARM would say is missing at `path`, read as ARM reads an id: pairs of a
    key and a name (`resourceGroups/{name}`), where `providers/{namespace}` starts a
    provider's part and each key after it is a resource type."""
    parts = [part for part in path.split("/") if part]
    namespace: str | None = None
    types: list[str] = []
    for key, name in itertools.zip_longest(parts[::2], parts[1::2]):
        if key.lower() == "providers" and name is not None:
            namespace, types = name, []
        elif namespace is not None:
            types.append(key)
    if namespace is not None and namespace.lower() not in _NAMESPACES:
        return NoRegisteredProviderFound(
            f"No registered resource provider found for namespace '{namespace}'."
        )
    if namespace is not None and types:
        return InvalidResourceType(
            f"The resource type '{'/'.join(types)}' could not be found in the namespace "
            f"'{namespace}'."
        )
    return ResourceNotFound(f"no resource or action of this server at {path}")


class _Fallback:
    """An ASGI app, so that its routes take every method: 405 if one of `served`
    takes the path with other methods, else 404."""

    def __init__(self, served: list[BaseRoute]) -> None:
        self._served = served
        self._answer = endpoint(self._unknown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self._answer(Request(scope, receive, send))
        await response(scope, receive, send)

    async def _unknown(self, request: Request) -> Response:
        allowed: set[str] = set()
        for route in self._served:
            if isinstance(route, Route) and route.matches(request.scope)[0] is Match.PARTIAL:
                allowed |= route.methods or set()
        if allowed:
            error = MethodNotAllowed(
                f"The requested resource does not support http method '{request.method}'."
            )
            return arm_error_response(error, {"Allow": ", ".join(sorted(allowed))})
        raise _missing(request.url.path)


def fallback(served: list[BaseRoute]) -> list[BaseRoute]:
    """Routes to put after every other: ARM's answer under `/subscriptions/` and
    `/providers/` for what `served` does not serve."""
    app = _Fallback(served)
    return [
        Route(path, app)
        for path in (
            "/subscriptions",
            "/subscriptions/{rest:path}",
            "/providers",
            "/providers/{rest:path}",
        )
    ]


routes = [Route(f"/providers/{PROVIDER}/operations", list_operations, methods=["GET"])]
