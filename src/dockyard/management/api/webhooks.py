"""`registries/webhooks` and their actions `getCallbackConfig`, `ping` and `listEvents`:
the webhooks of `dockyard.webhooks.model`, as ARM resources. The service URI and
custom headers are write-only here, as on ACR: only `getCallbackConfig` shows them."""

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
    endpoint,
    json_body,
    json_response,
    registry_for,
    section,
    services_of,
)
from dockyard.management.api.paging import (
    cut,
    page_of,
    page_request,
    page_response,
    whole_number,
)
from dockyard.management.api.registries import REGISTRY
from dockyard.management.registry_resources import RegistryResource
from dockyard.webhooks.model import Webhook, WebhookUnknown

WEBHOOK_TYPE = "Microsoft.ContainerRegistry/registries/webhooks"


def _shape(resource: RegistryResource, hook: Webhook) -> dict[str, Any]:
    return {
        "id": child_id(resource, "webhooks", hook.name),
        "name": hook.name,
        "type": WEBHOOK_TYPE,
        "location": hook.location or resource.location,
        "tags": hook.tags,
        "properties": {
            "status": hook.status,
            "scope": hook.scope,
            "actions": list(hook.actions),
            "provisioningState": SUCCEEDED,
        },
    }


class _WebhookProperties(Body):
    serviceUri: str | None = None
    customHeaders: dict[str, str] | None = None
    actions: list[str] | None = None
    scope: str | None = None
    status: str | None = None


class WebhookBody(Body):
    """A webhook's PUT (Webhook) or PATCH (WebhookUpdateParameters)."""

    location: str | None = None
    tags: dict[str, str] | None = None
    properties: _WebhookProperties | None = None


def _exists(request: Request, resource: RegistryResource) -> bool:
    try:
        services_of(request).webhooks.get(resource.record, request.path_params["webhook"])
    except WebhookUnknown:
        return False
    return True


@endpoint
async def list_webhooks(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    hooks = services_of(request).webhooks.list(resource.record)  # at most the tier's 500
    page, after = page_of(request, hooks, lambda hook: hook.name)
    return page_response(request, [_shape(resource, hook) for hook in page], after)


@endpoint
async def get_webhook(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    hook = services_of(request).webhooks.get(resource.record, request.path_params["webhook"])
    return json_response(_shape(resource, hook))


@endpoint
async def put_webhook(request: Request) -> Response:
    """PUT creates a webhook, or updates one that exists; PATCH only updates."""
    resource, _ = await registry_for(request, WRITE)
    body = await json_body(request, WebhookBody)
    properties = section(body, "properties")
    webhooks, name = services_of(request).webhooks, request.path_params["webhook"]
    tags, headers = body.get("tags"), properties.get("customHeaders")
    actions = properties.get("actions")
    if request.method == "PUT" and not _exists(request, resource):
        if not properties.get("serviceUri") or not actions:
            raise InvalidRequestContent("a new webhook needs serviceUri and actions")
        hook = await asyncio.to_thread(
            webhooks.create,
            resource.record,
            name,
            properties["serviceUri"],
            actions,
            headers,
            properties.get("scope") or "",
            properties.get("status") or "enabled",
            body.get("location") or resource.location,
            tags,
        )
        return json_response(_shape(resource, hook), status_code=201)
    hook = await asyncio.to_thread(
        webhooks.update,
        resource.record,
        name,
        properties.get("serviceUri"),
        headers,
        actions,
        properties.get("scope"),
        properties.get("status"),
        tags,
    )
    return json_response(_shape(resource, hook))


@endpoint
async def delete_webhook(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    if not _exists(request, resource):
        return Response(status_code=204)
    services_of(request).webhooks.delete(resource.record, request.path_params["webhook"])
    return Response(status_code=200)


@endpoint
async def get_callback_config(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    config = services_of(request).webhooks.callback_config(
        resource.record, request.path_params["webhook"]
    )
    return json_response({"serviceUri": config.service_uri, "customHeaders": config.custom_headers})


@endpoint
async def ping(request: Request) -> Response:
    resource, _ = await registry_for(request, WRITE)
    event = await asyncio.to_thread(
        services_of(request).webhooks.ping, resource.record, request.path_params["webhook"]
    )
    return json_response({"id": event.sent.event_id})


@endpoint
async def list_events(request: Request) -> Response:
    """Newest first; a page continues before the last one's position (POST, and GET for
    the `nextLink` the SDK's pager follows)."""
    resource, _ = await registry_for(request, WRITE)
    wanted = page_request(request)
    before = None if wanted.after is None else whole_number(wanted.after)
    if wanted.after is not None and before is None:
        raise InvalidRequestContent("$skipToken must be a position from a nextLink")
    events = services_of(request).webhooks.events(
        resource.record, request.path_params["webhook"], limit=wanted.size + 1, before=before
    )
    page, after = cut(events, wanted.size, lambda event: str(event.position))
    return page_response(request, [event.as_arm() for event in page], after)


WEBHOOK = REGISTRY + "/webhooks/{webhook}"

routes = [
    Route(REGISTRY + "/webhooks", list_webhooks, methods=["GET"]),
    Route(WEBHOOK, get_webhook, methods=["GET"]),
    Route(WEBHOOK, put_webhook, methods=["PUT", "PATCH"]),
    Route(WEBHOOK, delete_webhook, methods=["DELETE"]),
    Route(WEBHOOK + "/getCallbackConfig", get_callback_config, methods=["POST"]),
    Route(WEBHOOK + "/ping", ping, methods=["POST"]),
    Route(WEBHOOK + "/listEvents", list_events, methods=["POST", "GET"]),
]
