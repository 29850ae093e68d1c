"""`/acr/v1/`: ACR's data-plane API (what the azure-containerregistry SDK, `az acr
repository` and the portal use): repository, tag and manifest attributes, their
listings, changes to their locks, and deletes; and the soft delete policy's recycle bin
(`/acr/v1/_deleted/...`: listings and restore).

Wire shapes follow ACR field for field: camelCase names, timestamps in UTC with seven
fractional digits and `Z`, `changeableAttributes` on every object. Names and digests
may arrive percent-encoded (`team%2Fapp`, `sha256%3A...`): the server decodes the path
before routing. `?api-version=` is ignored. Path parameters are named `name`, `tag` and
`digest`, which is what authorization reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api import distribution
from dockyard.api.authorization import (
    DELETED_CATALOG,
    authorize,
    authorize_one_of,
    repository_scope,
    request_registry,
)
from dockyard.api.pagination import next_link
from dockyard.common.errors import RequestInvalid
from dockyard.core.listings import page_size
from dockyard.core.locks import Locks
from dockyard.core.manifest_formats import INDEX_TYPES
from dockyard.core.properties import (
    ManifestAttributes,
    RepositoryAttributes,
    TagAttributes,
    lock_changes,
)
from dockyard.core.registries import RegistryRecord
from dockyard.services import Services

if TYPE_CHECKING:
    # Only the recycle bin's records, which its listings render (see the xfail in
    # tests/test_import_rules.py): lifecycle never loads with the kernel's API.
    from dockyard.lifecycle.soft_delete import DeletedManifest, DeletedTag

# Tags and manifests are heavier than names: smaller pages unless the client says `n`.
DEFAULT_PAGE = 100


def _services(request: Request) -> Services:
    return request.app.state.services


def _json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def _page_size(request: Request) -> int:
    n = page_size(request.query_params.get("n"), DEFAULT_PAGE)
    assert n is not None
    return n


async def _changes(request: Request) -> dict[str, bool]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RequestInvalid(f"the body is not valid JSON: {exc}") from None
    return lock_changes(body)


# -- wire shapes -------------------------------------------------------------------------


def _time(value: datetime) -> str:
    """ACR's timestamps: `2018-09-07T16:30:46.6583219Z` (Python keeps microseconds)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _changeable(locks: Locks) -> dict[str, bool]:
    return {
        "deleteEnabled": locks.delete_enabled,
        "writeEnabled": locks.write_enabled,
        "readEnabled": locks.read_enabled,
        "listEnabled": locks.list_enabled,
    }


def _repository(registry: RegistryRecord, repo: RepositoryAttributes) -> dict[str, Any]:
    return {
        "registry": registry.login_server,
        "imageName": repo.name,
        "createdTime": _time(repo.created_at),
        "lastUpdateTime": _time(repo.updated_at),
        "manifestCount": repo.manifest_count,
        "tagCount": repo.tag_count,
        "changeableAttributes": {**_changeable(repo.locks), "teleportEnabled": False},
    }


def _tag(tag: TagAttributes) -> dict[str, Any]:
    return {
        "name": tag.name,
        "digest": tag.digest,
        "createdTime": _time(tag.created_at),
        "lastUpdateTime": _time(tag.updated_at),
        "signed": False,
        "changeableAttributes": _changeable(tag.locks),
    }


def _manifest(manifest: ManifestAttributes) -> dict[str, Any]:
    """An index has `references` (its children's platforms) and no platform of its own;
    fields Dockyard does not know (an artifact's platform) are left out, as ACR does."""
    shown: dict[str, Any] = {
        "digest": manifest.digest,
        "imageSize": manifest.image_size,
        "createdTime": _time(manifest.created_at),
        "lastUpdateTime": _time(manifest.updated_at),
    }
    if manifest.architecture is not None:
        shown["architecture"] = manifest.architecture
    if manifest.os is not None:
        shown["os"] = manifest.os
    shown["mediaType"] = manifest.media_type
    if manifest.config_media_type is not None:
        shown["configMediaType"] = manifest.config_media_type
    shown["tags"] = list(manifest.tags)
    if manifest.media_type in INDEX_TYPES:
        shown["references"] = [
            {
                "digest": child.digest,
                **({"architecture": child.architecture} if child.architecture else {}),
                **({"os": child.os} if child.os else {}),
            }
            for child in manifest.references
        ]
    shown["changeableAttributes"] = _changeable(manifest.locks)
    return shown


def _deleted_manifest(manifest: DeletedManifest) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "digest": manifest.digest,
        "imageSize": manifest.image_size,
        "createdTime": _time(manifest.created_at),
        "deletedAt": _time(manifest.deleted_at),
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
        "createdTime": _time(tag.created_at),
        "deletedAt": _time(tag.deleted_at),
    }


# -- handlers ----------------------------------------------------------------------------

# The docker scope words each method needs, as ACR and the az CLI name them.
_ACCESS = {"GET": "metadata_read", "PATCH": "metadata_write", "DELETE": "delete"}


async def repository(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, _ACCESS[request.method]))
    if request.method == "GET":
        found = services.properties.repository(registry, name)
    elif request.method == "PATCH":
        found = services.properties.update_repository(registry, name, await _changes(request))
    else:
        deleted = services.manifests.delete_repository(registry, name)
        return _json(
            {"manifestsDeleted": deleted.digests, "tagsDeleted": deleted.tags}, status_code=202
        )
    return _json(_repository(registry, found))


async def tags(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "metadata_read"))
    query = request.query_params
    orderby, digest = query.get("orderby", ""), query.get("digest")
    page = services.properties.tags(
        registry,
        name,
        last=query.get("last"),
        n=_page_size(request),
        orderby=orderby,
        digest=digest,
    )
    filters = {"digest": digest} if digest is not None else {}
    return _json(
        {
            "registry": registry.login_server,
            "imageName": name,
            "tags": [_tag(tag) for tag in page.items],
        },
        headers=next_link(f"/acr/v1/{name}/_tags", page, orderby, **filters),
    )


async def tag(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name, reference = request.path_params["name"], request.path_params["tag"]
    if request.method == "DELETE":
        await authorize_one_of(request, name, "delete", "metadata_write")
        services.manifests.untag(registry, name, reference)
        return Response(None, status_code=202)
    await authorize(request, repository_scope(name, _ACCESS[request.method]))
    if request.method == "GET":
        found = services.properties.tag(registry, name, reference)
    else:
        found = services.properties.update_tag(registry, name, reference, await _changes(request))
    return _json({"registry": registry.login_server, "imageName": name, "tag": _tag(found)})


async def manifests(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "metadata_read"))
    query = request.query_params
    orderby = query.get("orderby", "")
    page = services.properties.manifests(
        registry,
        name,
        last=query.get("last"),
        n=_page_size(request),
        orderby=orderby,
    )
    return _json(
        {
            "registry": registry.login_server,
            "imageName": name,
            "manifests": [_manifest(manifest) for manifest in page.items],
        },
        headers=next_link(f"/acr/v1/{name}/_manifests", page, orderby),
    )


async def manifest(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name, digest = request.path_params["name"], request.path_params["digest"]
    await authorize(request, repository_scope(name, _ACCESS[request.method]))
    if request.method == "DELETE":
        services.manifests.delete_manifest(registry, name, digest)
        return Response(None, status_code=202)
    if request.method == "GET":
        found = services.properties.manifest(registry, name, digest)
    else:
        found = services.properties.update_manifest(registry, name, digest, await _changes(request))
    return _json(
        {"registry": registry.login_server, "imageName": name, "manifest": _manifest(found)}
    )


async def deleted_catalog(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    await authorize(request, DELETED_CATALOG)
    page = services.soft_delete.repositories(
        registry, request.query_params.get("last"), _page_size(request)
    )
    return _json({"repositories": page.items}, headers=next_link("/acr/v1/_deleted/_catalog", page))


async def deleted_manifests(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "deleted_read"))
    found = services.soft_delete.manifests(registry, name)
    return _json(
        {
            "registry": registry.login_server,
            "imageName": name,
            "manifests": [_deleted_manifest(manifest) for manifest in found],
        }
    )


async def deleted_tags(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "deleted_read"))
    found = services.soft_delete.tags(registry, name)
    return _json(
        {
            "registry": registry.login_server,
            "imageName": name,
            "tags": [_deleted_tag(tag) for tag in found],
        }
    )


async def restore(request: Request) -> Response:
    """The body names the tag to restore (`{"tag": "v1"}`), or is empty for the manifest
    alone; `?force=true` moves a tag that names another manifest."""
    services, registry = _services(request), request_registry(request)
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
    return _json({**restored, **({"tag": tag} if tag else {})})


# Specific routes before `{name:path}` alone, which would swallow their paths.
routes = [
    Route("/acr/v1/_deleted/_catalog", deleted_catalog, methods=["GET"]),
    Route("/acr/v1/_deleted/{name:path}/_manifests/{digest}", restore, methods=["POST"]),
    Route("/acr/v1/_deleted/{name:path}/_manifests", deleted_manifests, methods=["GET"]),
    Route("/acr/v1/_deleted/{name:path}/_tags", deleted_tags, methods=["GET"]),
    Route("/acr/v1/_catalog", distribution.catalog, methods=["GET"]),
    Route("/acr/v1/{name:path}/_tags/{tag}", tag, methods=["GET", "PATCH", "DELETE"]),
    Route("/acr/v1/{name:path}/_tags", tags, methods=["GET"]),
    Route("/acr/v1/{name:path}/_manifests/{digest}", manifest, methods=["GET", "PATCH", "DELETE"]),
    Route("/acr/v1/{name:path}/_manifests", manifests, methods=["GET"]),
    Route("/acr/v1/{name:path}", repository, methods=["GET", "PATCH", "DELETE"]),
]
