"""`/acr/v1/`: ACR's data-plane API (what the azure-containerregistry SDK, `az acr
repository` and the portal use): repository, tag and manifest attributes, their
listings, changes to their locks, and deletes. The soft delete policy's recycle bin
(`/acr/v1/_deleted/...`) is the lifecycle feature's (`lifecycle/acr.py`), in these
shapes (`json_response`, `acr_time`, `listing_size`).

Wire shapes follow ACR field for field: camelCase names, timestamps in UTC with seven
fractional digits and `Z`, `changeableAttributes` on every object. Names and digests
may arrive percent-encoded (`team%2Fapp`, `sha256%3A...`): the server decodes the path
before routing. `?api-version=` is ignored. Path parameters are named `name`, `tag` and
`digest`, which is what authorization reads.

A manifest's `changeableAttributes` carry its `quarantineState` and `quarantineDetails`
when it has them (the quarantine feature's `Services.quarantine`); a PATCH that sets
them is a quarantine writer's, refused to callers without `quarantinedArtifacts/write`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api import distribution
from dockyard.api.authorization import (
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

# Tags and manifests are heavier than names: smaller pages unless the client says `n`.
DEFAULT_PAGE = 100


def _services(request: Request) -> Services:
    return request.app.state.services


def json_response(
    content: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """An `/acr/v1` body: JSON, as ACR answers every one."""
    return Response(
        orjson.dumps(content),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def listing_size(request: Request) -> int:
    """The page size an `/acr/v1` listing asked for (`?n=`), else `DEFAULT_PAGE`."""
    n = page_size(request.query_params.get("n"), DEFAULT_PAGE)
    assert n is not None
    return n


async def _body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise RequestInvalid(f"the body is not valid JSON: {exc}") from None


async def _changes(request: Request) -> dict[str, bool]:
    return lock_changes(await _body(request))


_QUARANTINE_KEYS = ("quarantineState", "quarantineDetails")

# -- wire shapes -------------------------------------------------------------------------


def acr_time(value: datetime) -> str:
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
        "createdTime": acr_time(repo.created_at),
        "lastUpdateTime": acr_time(repo.updated_at),
        "manifestCount": repo.manifest_count,
        "tagCount": repo.tag_count,
        "changeableAttributes": {**_changeable(repo.locks), "teleportEnabled": False},
    }


def _tag(tag: TagAttributes) -> dict[str, Any]:
    return {
        "name": tag.name,
        "digest": tag.digest,
        "createdTime": acr_time(tag.created_at),
        "lastUpdateTime": acr_time(tag.updated_at),
        "signed": tag.signed,
        "changeableAttributes": _changeable(tag.locks),
    }


def _manifest(manifest: ManifestAttributes, quarantine: dict[str, str]) -> dict[str, Any]:
    """An index has `references` (its children's platforms) and no platform of its own;
    fields Dockyard does not know (an artifact's platform) are left out, as ACR does,
    and so are the quarantine fields of a manifest that has no quarantine state
    (`quarantine`: those it has, in ACR's names)."""
    shown: dict[str, Any] = {
        "digest": manifest.digest,
        "imageSize": manifest.image_size,
        "createdTime": acr_time(manifest.created_at),
        "lastUpdateTime": acr_time(manifest.updated_at),
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
    shown["signed"] = manifest.signed
    shown["changeableAttributes"] = {**_changeable(manifest.locks), **quarantine}
    return shown


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
        return json_response(
            {"manifestsDeleted": deleted.digests, "tagsDeleted": deleted.tags}, status_code=202
        )
    return json_response(_repository(registry, found))


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
        n=listing_size(request),
        orderby=orderby,
        digest=digest,
    )
    filters = {"digest": digest} if digest is not None else {}
    return json_response(
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
    return json_response({"registry": registry.login_server, "imageName": name, "tag": _tag(found)})


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
        n=listing_size(request),
        orderby=orderby,
    )
    shown = services.quarantine.attributes(registry, name, [m.digest for m in page.items])
    return json_response(
        {
            "registry": registry.login_server,
            "imageName": name,
            "manifests": [_manifest(m, shown.get(m.digest, {})) for m in page.items],
        },
        headers=next_link(f"/acr/v1/{name}/_manifests", page, orderby),
    )


async def manifest(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name, digest = request.path_params["name"], request.path_params["digest"]
    if request.method == "PATCH":
        await _patch_manifest(request, services, registry, name, digest)
    else:
        await authorize(request, repository_scope(name, _ACCESS[request.method]))
    if request.method == "DELETE":
        services.manifests.delete_manifest(registry, name, digest)
        return Response(None, status_code=202)
    found = services.properties.manifest(registry, name, digest)
    quarantine = services.quarantine.attributes(registry, name, [digest]).get(digest, {})
    shown = _manifest(found, quarantine)
    return json_response({"registry": registry.login_server, "imageName": name, "manifest": shown})


async def _patch_manifest(
    request: Request, services: Services, registry: RegistryRecord, name: str, digest: str
) -> None:
    """Locks need `metadata_write`; a quarantine state needs a pull token (what ACR's
    walkthrough asks for) and `quarantinedArtifacts/write`. Both are checked before
    either is written; then the state, then the locks, as two PATCHes would."""
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict) or not any(key in body for key in _QUARANTINE_KEYS):
        await authorize(request, repository_scope(name, "metadata_write"))
        services.properties.update_manifest(registry, name, digest, await _changes(request))
        return
    await authorize(request, repository_scope(name, "pull"))
    services.quarantine.check_writer(registry, name)
    changes = lock_changes({k: v for k, v in body.items() if k not in _QUARANTINE_KEYS})
    if changes:
        await authorize(request, repository_scope(name, "metadata_write"))
    services.quarantine.set_state(
        registry, name, digest, body.get("quarantineState"), body.get("quarantineDetails")
    )
    services.properties.update_manifest(registry, name, digest, changes)


# Specific routes before `{name:path}` alone, which would swallow their paths.
routes = [
    Route("/acr/v1/_catalog", distribution.catalog, methods=["GET"]),
    Route("/acr/v1/{name:path}/_tags/{tag}", tag, methods=["GET", "PATCH", "DELETE"]),
    Route("/acr/v1/{name:path}/_tags", tags, methods=["GET"]),
    Route("/acr/v1/{name:path}/_manifests/{digest}", manifest, methods=["GET", "PATCH", "DELETE"]),
    Route("/acr/v1/{name:path}/_manifests", manifests, methods=["GET"]),
    Route("/acr/v1/{name:path}", repository, methods=["GET", "PATCH", "DELETE"]),
]
