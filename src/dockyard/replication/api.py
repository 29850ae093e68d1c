"""The peer-facing endpoints under `/_dockyard/replication/v1/`: only a known peer with
the shared peer credential (`peers.accepts`) is answered; anyone else gets 401 with no
hint of why. Each applies one change a peer sends (`applier.Applier`), idempotently; the
registry is named by its name, the same in every region. The request's caller is
recorded as `replication:<region>`, so the outbox events the change writes here are
known as applied from a peer and not sent on (`sender`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.api.errors import error_response
from dockyard.common.errors import NameUnknown, RegistryError, RequestInvalid, SizeInvalid
from dockyard.common.request_context import current_request
from dockyard.core.registries import RegistryRecord
from dockyard.replication.applier import LOCK_COLUMNS, PEER_CALLER
from dockyard.replication.bundles import MOST_BYTES, read_bundle
from dockyard.replication.peers import PREFIX, REGION_HEADER, accepts
from dockyard.replication.stamps import Stamp
from dockyard.services import Services

QUARANTINE_STATES = ("Passed", "Failed")


def _services(request: Request) -> Services:
    return request.app.state.services


def _refused() -> Response:
    return JSONResponse({"error": "not a peer region of this deployment"}, status_code=401)


def _from_peer(request: Request) -> bool:
    regions = _services(request).replications.regions
    region = request.headers.get(REGION_HEADER)
    if not accepts(regions, region, request.headers.get("authorization")):
        return False
    info = current_request.get()
    if info is not None:
        info.identity = PEER_CALLER + str(region)
    return True


def _registry(request: Request) -> RegistryRecord:
    name = request.path_params["registry"]
    found = next((r for r in _services(request).registries.all() if r.name == name), None)
    if found is None:
        raise NameUnknown(f"this region has no registry {name}", detail={"name": name})
    return found


def _repository(request: Request) -> str:
    repo = request.query_params.get("repository")
    if not repo:
        raise RequestInvalid("the repository query parameter is required")
    return repo


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise RequestInvalid("the body is not JSON") from None
    if not isinstance(body, dict):
        raise RequestInvalid("the body is a JSON object")
    return body


def _stamp(body: dict[str, Any]) -> Stamp:
    try:
        return Stamp.from_json(body.get("stamp"))
    except ValueError as exc:
        raise RequestInvalid(str(exc)) from None


def _text(body: dict[str, Any], key: str, optional: bool = False) -> Any:
    value = body.get(key)
    if (value is None and optional) or isinstance(value, str):
        return value
    raise RequestInvalid(f"{key} is a string")


def _flag(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if isinstance(value, bool):
        return value
    raise RequestInvalid(f"{key} is true or false")


Handler = Callable[[Request], Awaitable[Response]]


def peer_endpoint(handler: Handler) -> Handler:
    """Refuse a caller that is no peer; answer domain errors in the registry API's shape."""

    async def run(request: Request) -> Response:
        if not _from_peer(request):
            return _refused()
        try:
            return await handler(request)
        except RegistryError as exc:
            return error_response(exc)

    return run


@peer_endpoint
async def ping(request: Request) -> Response:
    """A peer asks whether this region knows it and shares its credential."""
    return JSONResponse({"region": _services(request).replications.regions.home})


@peer_endpoint
async def link_blob(request: Request) -> Response:
    """200 if this region holds the blob (now linked in the repository), else 404."""
    linked = _services(request).replication_applier.link_blob(
        _registry(request), _repository(request), request.path_params["digest"]
    )
    return Response(status_code=200 if linked else 404)


@peer_endpoint
async def put_blob(request: Request) -> Response:
    length = request.headers.get("content-length")
    await _services(request).replication_applier.put_blob(
        _registry(request),
        _repository(request),
        request.path_params["digest"],
        request.stream(),
        int(length) if length and length.isdigit() else None,
    )
    return Response(status_code=201)


def _whole(request: Request, name: str) -> int | None:
    value = request.query_params.get(name) or request.headers.get(name) or ""
    return int(value) if value.isdigit() else None


@peer_endpoint
async def start_blob(request: Request) -> Response:
    """A session for a blob sent in parts, resumable: `{"upload"}`."""
    upload = await _services(request).replication_applier.start_blob(
        _registry(request), _repository(request)
    )
    return JSONResponse({"upload": upload}, status_code=201)


@peer_endpoint
async def blob_received(request: Request) -> Response:
    """`{"offset"}`: how many bytes of the session are here (404: no such session)."""
    offset = _services(request).replication_applier.blob_received(
        _registry(request), _repository(request), request.path_params["upload"]
    )
    return JSONResponse({"offset": offset})


@peer_endpoint
async def append_blob(request: Request) -> Response:
    """Bytes from `offset` (the query's), which must be what the session holds (416 with
    its size otherwise): `{"offset"}` after."""
    offset = _whole(request, "offset")
    if offset is None:
        raise RequestInvalid("the offset query parameter is required")
    size = await _services(request).replication_applier.append_blob(
        _registry(request),
        _repository(request),
        request.path_params["upload"],
        offset,
        request.stream(),
        _whole(request, "content-length"),
    )
    return JSONResponse({"offset": size})


@peer_endpoint
async def finish_blob(request: Request) -> Response:
    """Verify the session's bytes against `digest` (the query's) and store the blob."""
    digest = request.query_params.get("digest")
    if not digest:
        raise RequestInvalid("the digest query parameter is required")
    await _services(request).replication_applier.finish_blob(
        _registry(request), _repository(request), request.path_params["upload"], digest
    )
    return Response(status_code=201)


@peer_endpoint
async def put_manifest(request: Request) -> Response:
    """The manifest's body; with `tag`, `wall`, `region` (its stamp) and `restored` in
    the query, the write of that tag naming it too, answered `{"applied"}`."""
    applier, query = _services(request).replication_applier, request.query_params
    registry, repo, digest = _registry(request), _repository(request), request.path_params["digest"]
    body, media_type = await request.body(), request.headers.get("content-type", "")
    tag = query.get("tag")
    if tag is None:
        await applier.put_manifest(registry, repo, digest, body, media_type)
        return Response(status_code=201)
    wall = query.get("wall", "")
    stamp = _stamp(
        {"stamp": {"wall": int(wall) if wall.isdigit() else None, "region": query.get("region")}}
    )
    applied = await applier.put_tagged(
        registry, repo, digest, body, media_type, tag, stamp, query.get("restored") == "true"
    )
    return JSONResponse({"applied": applied}, status_code=201)


@peer_endpoint
async def apply_changes(request: Request) -> Response:
    """A bundle of changes (`bundles`), applied in its order: `{"applied"}`, for each
    change whether its tag's write applied (null: it has no tag)."""
    length = _whole(request, "content-length")
    if length is not None and length > MOST_BYTES:
        raise SizeInvalid(f"a bundle carries at most {MOST_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MOST_BYTES:
            raise SizeInvalid(f"a bundle carries at most {MOST_BYTES} bytes")
    changes = read_bundle(bytes(body))
    applied = await _services(request).replication_applier.apply(_registry(request), changes)
    return JSONResponse({"applied": applied})


@peer_endpoint
async def manifest_held(request: Request) -> Response:
    """200 if this region holds the manifest (so it pulls here), else 404: what a peer's
    webhook located in this region waits for (`presence`)."""
    held = _services(request).replication_applier.holds(
        _registry(request), _repository(request), request.path_params["digest"]
    )
    return Response(status_code=200 if held else 404)


@peer_endpoint
async def write_tag(request: Request) -> Response:
    """`{"repository", "tag", "digest" (null: a delete), "stamp", "soft" (the delete
    went to the recycle bin), "restored" (the write was a restore from it)}`."""
    body = await _json(request)
    applied = await _services(request).replication_applier.write_tag(
        _registry(request),
        _text(body, "repository"),
        _text(body, "tag"),
        _text(body, "digest", optional=True),
        _stamp(body),
        soft=_flag(body, "soft"),
        restored=_flag(body, "restored"),
    )
    return JSONResponse({"applied": applied})


@peer_endpoint
async def delete_manifest(request: Request) -> Response:
    """`{"repository", "digest", "tags", "stamp", "soft"}`."""
    body = await _json(request)
    tags = body.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise RequestInvalid("tags is a list of strings")
    deleted = _services(request).replication_applier.delete_manifest(
        _registry(request),
        _text(body, "repository"),
        _text(body, "digest"),
        tuple(tags),
        _stamp(body),
        soft=_flag(body, "soft"),
    )
    return JSONResponse({"deleted": deleted})


@peer_endpoint
async def delete_repository(request: Request) -> Response:
    """`{"repository"}`, after the deletes of its tags and manifests."""
    body = await _json(request)
    deleted = _services(request).replication_applier.delete_repository(
        _registry(request), _text(body, "repository")
    )
    return JSONResponse({"deleted": deleted})


@peer_endpoint
async def write_locks(request: Request) -> Response:
    """`{"repository", "tag" (or null), "digest" (or null), "changes": {ACR's lock name:
    bool}, "stamp"}`: the repository's locks, or its tag's or manifest's."""
    body = await _json(request)
    changes = body.get("changes")
    if (
        not isinstance(changes, dict)
        or not set(changes) <= set(LOCK_COLUMNS)
        or not all(isinstance(v, bool) for v in changes.values())
    ):
        raise RequestInvalid(f"changes maps some of {sorted(LOCK_COLUMNS)} to true or false")
    tag, digest = _text(body, "tag", optional=True), _text(body, "digest", optional=True)
    if tag is not None and digest is not None:
        raise RequestInvalid("locks are a tag's or a manifest's, not both")
    applied = _services(request).replication_applier.write_locks(
        _registry(request), _text(body, "repository"), tag, digest, changes, _stamp(body)
    )
    return JSONResponse({"applied": applied})


@peer_endpoint
async def set_quarantine(request: Request) -> Response:
    """`{"repository", "digest", "state" (Passed or Failed), "details" (or null),
    "stamp"}`."""
    body = await _json(request)
    state = body.get("state")
    if state not in QUARANTINE_STATES:
        raise RequestInvalid("state is Passed or Failed")
    applied = _services(request).replication_applier.set_quarantine(
        _registry(request),
        _text(body, "repository"),
        _text(body, "digest"),
        state,
        _text(body, "details", optional=True),
        _stamp(body),
    )
    return JSONResponse({"applied": applied})


_REGISTRY = PREFIX + "/registries/{registry}"

routes = [
    Route(PREFIX + "/ping", ping, methods=["GET"]),
    Route(_REGISTRY + "/blobs/{digest}/link", link_blob, methods=["POST"]),
    Route(_REGISTRY + "/blobs/{digest}", put_blob, methods=["PUT"]),
    Route(_REGISTRY + "/uploads", start_blob, methods=["POST"]),
    Route(_REGISTRY + "/uploads/{upload}", blob_received, methods=["GET"]),
    Route(_REGISTRY + "/uploads/{upload}", append_blob, methods=["PATCH"]),
    Route(_REGISTRY + "/uploads/{upload}", finish_blob, methods=["PUT"]),
    Route(_REGISTRY + "/changes", apply_changes, methods=["POST"]),
    Route(_REGISTRY + "/manifests/{digest}", put_manifest, methods=["PUT"]),
    Route(_REGISTRY + "/manifests/{digest}", manifest_held, methods=["GET"]),
    Route(_REGISTRY + "/tags", write_tag, methods=["POST"]),
    Route(_REGISTRY + "/deletes", delete_manifest, methods=["POST"]),
    Route(_REGISTRY + "/repositories/delete", delete_repository, methods=["POST"]),
    Route(_REGISTRY + "/locks", write_locks, methods=["POST"]),
    Route(_REGISTRY + "/quarantine", set_quarantine, methods=["POST"]),
]
