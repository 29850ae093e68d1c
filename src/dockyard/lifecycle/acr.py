"""The soft delete policy's recycle bin on ACR's data-plane API, `/acr/v1/_deleted/...`:
the deleted repositories, manifests and tags kept, and their restore, in `/acr/v1`'s
shapes (`api.acr`). Mounted through `Feature.routes`, before the kernel's
`/acr/v1/{name:path}` routes, which would swallow these paths. Named as the kernel's
module is, so `/metrics` labels these handlers `acr.<handler>` as before."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.acr import acr_time, json_response, listing_size
from dockyard.api.authorization import (
    DELETED_CATALOG,
    authorize,
    repository_scope,
    request_registry,
)
from dockyard.api.pagination import next_link
from dockyard.common.errors import RequestInvalid
from dockyard.lifecycle.soft_delete import DeletedManifest, DeletedTag


def _deleted_manifest(manifest: DeletedManifest) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "digest": manifest.digest,
        "imageSize": manifest.image_size,
        "createdTime": acr_time(manifest.created_at),
        "deletedAt": acr_time(manifest.deleted_at),
        "mediaType": manifest.media_type,
    }
    for key, value in (
        ("architecture", manifest.architecture),
        ("os", manifest.os),
        ("configMediaType", manifest.config_media_type),
    ):
        if value is not None:
            shown[key] = value
    shown["tags"] = list(manifest.tags)
    return shown


def _deleted_tag(tag: DeletedTag) -> dict[str, Any]:
    return {
        "tag": tag.name,
        "digest": tag.digest,
        "createdTime": acr_time(tag.created_at),
        "deletedAt": acr_time(tag.deleted_at),
    }


async def deleted_catalog(request: Request) -> Response:
    services, registry = request.app.state.services, request_registry(request)
    await authorize(request, DELETED_CATALOG)
    page = services.soft_delete.repositories(
        registry, request.query_params.get("last"), listing_size(request)
    )
    return json_response(
        {"repositories": page.items}, headers=next_link("/acr/v1/_deleted/_catalog", page)
    )


async def deleted_manifests(request: Request) -> Response:
    services, registry = request.app.state.services, request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "deleted_read"))
    found = services.soft_delete.manifests(registry, name)
    return json_response(
        {
            "registry": registry.login_server,
            "imageName": name,
            "manifests": [_deleted_manifest(manifest) for manifest in found],
        }
    )


async def deleted_tags(request: Request) -> Response:
    services, registry = request.app.state.services, request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "deleted_read"))
    found = services.soft_delete.tags(registry, name)
    return json_response(
        {
            "registry": registry.login_server,
            "imageName": name,
            "tags": [_deleted_tag(tag) for tag in found],
        }
    )


async def restore(request: Request) -> Response:
    """The body names the tag to restore (`{"tag": "v1"}`), or is empty for the manifest
    alone; `?force=true` moves a tag that names another manifest."""
    services, registry = request.app.state.services, request_registry(request)
    name, digest = request.path_params["name"], request.path_params["digest"]
    await authorize(request, repository_scope(name, "deleted_read,deleted_restore"))
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise RequestInvalid(f"the body is not valid JSON: {exc}") from None
    tag = body.get("tag") if isinstance(body, dict) else None
    if not isinstance(body, dict) or not isinstance(tag, str | None):
        raise RequestInvalid('the body must be {"tag": "<tag>"} or empty')
    force = request.query_params.get("force", "false").lower() == "true"
    services.soft_delete.restore(registry, name, digest, tag or None, force)
    restored = {"registry": registry.login_server, "imageName": name, "digest": digest}
    return json_response({**restored, **({"tag": tag} if tag else {})})


routes = [
    Route("/acr/v1/_deleted/_catalog", deleted_catalog, methods=["GET"]),
    Route("/acr/v1/_deleted/{name:path}/_manifests/{digest}", restore, methods=["POST"]),
    Route("/acr/v1/_deleted/{name:path}/_manifests", deleted_manifests, methods=["GET"]),
    Route("/acr/v1/_deleted/{name:path}/_tags", deleted_tags, methods=["GET"]),
]
