"""`/v2/`: the OCI Distribution 1.1 / Docker Registry v2 API."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

import orjson
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.authorization import CATALOG, authorize, repository_scope, request_registry
from dockyard.api.pagination import next_link
from dockyard.auth.permissions import Scope
from dockyard.common.errors import BlobUploadInvalid, ManifestTooLarge, NameInvalid, Unsupported
from dockyard.common.names import check_repository_name
from dockyard.core.blobs import BlobLocation
from dockyard.core.listings import MAX_PAGE, page_size
from dockyard.core.manifest_formats import MAX_MANIFEST_SIZE, OCI_INDEX
from dockyard.services import Services

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
# The docker scope words each method needs (clients ask for push and pull together).
_MANIFEST_ACCESS = {"GET": "pull", "HEAD": "pull", "PUT": "push", "DELETE": "delete"}
_BLOB_ACCESS = {"GET": "pull", "HEAD": "pull", "DELETE": "delete"}
# Sizes and offsets are signed 64-bit in the database and in error bodies: a range past
# this names bytes no upload can hold.
_MAX_OFFSET = (1 << 63) - 1


def _services(request: Request) -> Services:
    return request.app.state.services


def _length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        length = int(raw)
    except ValueError:
        raise BlobUploadInvalid(f"invalid Content-Length: {raw!r}") from None
    if not 0 <= length <= _MAX_OFFSET:
        raise BlobUploadInvalid(f"invalid Content-Length: {raw!r}")
    return length


async def base(request: Request) -> Response:
    await authorize(request, None)
    return Response(b"{}", media_type="application/json", headers=API_VERSION)


# -- manifests ---------------------------------------------------------------------------


async def manifest(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name, reference = request.path_params["name"], request.path_params["reference"]
    method = request.method
    await authorize(request, repository_scope(name, _MANIFEST_ACCESS[method]))
    if method in ("GET", "HEAD"):
        record = await services.pull_through.manifest(registry, name, reference)
        digest = record.digest.encode()
        return _ManifestResponse(
            record.body if method == "GET" else b"",
            [
                (b"docker-content-digest", digest),
                (b"content-type", record.media_type.encode("latin-1")),
                (b"etag", b'"' + digest + b'"'),
                (b"content-length", str(record.size).encode()),
            ],
        )
    if method == "PUT":
        body = await _read_limited(request, MAX_MANIFEST_SIZE)
        result = await services.manifests.put_in_turn(
            registry, name, reference, body, request.headers.get("content-type")
        )
        headers = {
            "Location": f"/v2/{name}/manifests/{result.digest}",
            "Docker-Content-Digest": result.digest,
        }
        if result.subject:
            headers["OCI-Subject"] = result.subject
        return Response(None, status_code=201, headers=headers)
    services.manifests.delete(registry, name, reference)
    return Response(None, status_code=202)


class _ManifestResponse(Response):
    """A manifest pull's answer, its headers given ready for the wire: the registry's
    most frequent response skips Starlette's header normalisation. A HEAD's body is
    empty and its Content-Length the manifest's."""

    def __init__(self, body: bytes, raw_headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


async def _read_limited(request: Request, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise ManifestTooLarge(f"manifest exceeds {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


# -- blobs -------------------------------------------------------------------------------


async def blob(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name, digest = request.path_params["name"], request.path_params["digest"]
    await authorize(request, repository_scope(name, _BLOB_ACCESS[request.method]))
    if request.method == "DELETE":
        services.blobs.unlink(registry, name, digest)
        return Response(None, status_code=202, headers={"Docker-Content-Digest": digest})
    location = services.blobs.locate(registry, name, digest)
    headers = {
        "Docker-Content-Digest": digest,
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
        "Cache-Control": "max-age=31536000",
    }
    requested = _byte_range(request.headers.get("range"), location.size)
    if requested == "unsatisfiable":
        headers["Content-Range"] = f"bytes */{location.size}"
        return Response(None, status_code=416, headers=headers)
    if request.method == "HEAD":
        headers["Content-Length"] = str(location.size)
        return Response(None, headers=headers)
    storage = services.settings.storage
    url = await location.presigned_url() if storage.redirect or storage.nginx_offload else None
    if url is not None and storage.nginx_offload:
        return _offloaded(storage.nginx_offload, digest, url, headers)
    if url is not None:
        # The caller is authorized; the bucket serves the bytes (and honours Range).
        redirect = {"Location": url, "Docker-Content-Digest": digest}
        return Response(None, status_code=307, headers=redirect)
    if requested is None:
        return BlobBody(location, headers)
    headers["Content-Range"] = f"bytes {requested[0]}-{requested[1]}/{location.size}"
    return BlobBody(location, headers, requested)


def _offloaded(internal: str, digest: str, url: str, headers: dict[str, str]) -> Response:
    """The caller is authorized; the nginx in front fetches the bytes from the bucket with
    the pre-signed `url` (its internal location `internal`, which forwards the client's
    `Range`). The digest rides in the path: nginx keeps few of this answer's headers."""
    signed = urlsplit(url)
    headers["X-Accel-Redirect"] = f"{internal}{digest}{signed.path}?{signed.query}"
    headers["Content-Length"] = "0"
    return Response(None, headers=headers)


def _byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """One `bytes=` range as inclusive (start, end); None to send everything."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(size - suffix, 0), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "unsatisfiable"
    return start, min(end, size - 1)


class ChunkBudget:
    """Chunk sizes for blob bodies within a budget of bytes held at once by this process:
    a lone pull reads large chunks (fewer trips through Python and granian per byte),
    many pulls at once share the budget in smaller ones. Each chunk is held twice while
    it is sent (Python's bytes and granian's copy), so the budget bounds the server's
    memory whatever the number of pulls."""

    def __init__(self, budget: int, smallest: int, largest: int) -> None:
        self.budget, self.smallest, self.largest = budget, smallest, largest
        self.sending = 0

    def size(self) -> int:
        return max(self.smallest, min(self.largest, self.budget // max(self.sending, 1)))

    @contextlib.contextmanager
    def sender(self) -> Iterator[None]:
        self.sending += 1
        try:
            yield
        finally:
            self.sending -= 1


# Per process, as memory is: 1 MiB chunks for up to four pulls at once, 256 KiB for 16
# or more (measured: one 1 GiB pull 1.0x Distribution at 1 MiB, 0.88x at 256 KiB).
_CHUNKS = ChunkBudget(4 << 20, 256 << 10, 1 << 20)
# From a remote store every chunk also costs a trip through a thread and a read through
# the S3 client's layers, so chunks are larger there: 2 MiB for up to four pulls at once,
# 512 KiB for 16 or more (docs/performance.md has the measurements).
_REMOTE_CHUNKS = ChunkBudget(8 << 20, 512 << 10, 2 << 20)


class BlobBody(Response):
    """A blob's bytes, whole (200) or one range (206), read in chunks and sent from Python.
    Measured here (granian 2.8.7, one 1 GiB stream on loopback), chunks of 0.25-2 MiB
    went at 2.1-2.4 GB/s where granian's `http.response.pathsend` managed 0.9-1.4 GB/s
    (it reads the file in small pieces on its blocking threads), and 32 concurrent
    pulls ran the same either way; granian's send waits for the socket, so a slow
    client holds one chunk, not the blob."""

    def __init__(
        self, location: BlobLocation, headers: dict[str, str], span: tuple[int, int] | None = None
    ) -> None:
        """`span`: the inclusive (start, end) of a range request, else the whole blob."""
        super().__init__(None, status_code=200 if span is None else 206, headers=headers)
        self.start, self.end = (0, location.size - 1) if span is None else span
        self.headers["Content-Length"] = str(self.end - self.start + 1)
        self.location = location

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        remaining = self.end - self.start + 1
        chunks = _REMOTE_CHUNKS if self.location.store.remote else _CHUNKS
        with await self.location.open() as source, chunks.sender():
            if self.start:
                source.seek(self.start)  # no I/O on either store: a seek only moves the position
            # The first chunk before the status line: a store that cannot be read answers
            # 503 in the error shape, not a 200 cut short.
            chunk = await self.location.read(source, min(chunks.size(), remaining))
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            while chunk:
                remaining -= len(chunk)
                if remaining == 0:
                    await send({"type": "http.response.body", "body": chunk})
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                chunk = await self.location.read(source, min(chunks.size(), remaining))
        await send({"type": "http.response.body", "body": b""})  # empty, or cut short


# -- uploads -----------------------------------------------------------------------------


def _upload_headers(name: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
        "Range": f"0-{max(size - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
        "Content-Length": "0",
    }


def _blob_created(name: str, digest: str) -> Response:
    return Response(
        None,
        status_code=201,
        headers={
            "Location": f"/v2/{name}/blobs/{digest}",
            "Docker-Content-Digest": digest,
            "Content-Length": "0",
        },
    )


def _mount_source(query: QueryParams) -> Scope | None:
    """Pull on a cross-repository mount's source (`mount=&from=`), a valid name only: the
    challenge names it, and without it the upload starts as an ordinary one."""
    source = query.get("from")
    if not query.get("mount") or not source:
        return None
    try:
        check_repository_name(source)
    except NameInvalid:
        return None
    return repository_scope(source, "pull")


async def start_upload(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    query = request.query_params
    mount, source = query.get("mount"), _mount_source(query)
    caller = await authorize(request, repository_scope(name, "push"), also=source)
    if (
        mount
        and source is not None
        and caller.may(source)
        and services.blobs.mount(registry, name, mount, source.name)
    ):
        return _blob_created(name, mount)
    digest = query.get("digest")
    if digest:
        await services.uploads.upload_whole(
            registry, name, digest, request.stream(), _length(request)
        )
        return _blob_created(name, digest)
    state = await services.uploads.start(registry, name)
    return Response(None, status_code=202, headers=_upload_headers(name, state.id, state.size))


async def upload(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name, upload_id = request.path_params["name"], request.path_params["uuid"]
    await authorize(request, repository_scope(name, "push"))
    method = request.method
    if method == "GET":
        state = services.uploads.status(registry, name, upload_id)
        return Response(None, status_code=204, headers=_upload_headers(name, state.id, state.size))
    if method == "DELETE":
        await services.uploads.cancel(registry, name, upload_id)
        return Response(None, status_code=204)
    if method == "PATCH":
        start, length = _content_range(request)
        state = await services.uploads.append(
            registry, name, upload_id, request.stream(), start, length
        )
        return Response(None, status_code=202, headers=_upload_headers(name, state.id, state.size))
    digest = request.query_params.get("digest")
    if not digest:
        raise BlobUploadInvalid("the digest query parameter is required to finish an upload")
    start, length = _content_range(request)
    await services.uploads.finish(
        registry, name, upload_id, digest, request.stream(), length, start
    )
    return _blob_created(name, digest)


def _content_range(request: Request) -> tuple[int | None, int | None]:
    """(start, length) of a chunk from Content-Range `start-end`, if the client sent one;
    refused before the upload is touched if it cannot describe the body (the session
    stays as it was)."""
    header = request.headers.get("content-range")
    length = _length(request)
    if not header:
        return None, length
    text = header.removeprefix("bytes ").removeprefix("bytes=").split("/")[0]
    first, _, last = text.partition("-")
    try:
        start, end = int(first), int(last)
    except ValueError:
        raise BlobUploadInvalid(f"invalid Content-Range: {header!r}") from None
    if not 0 <= start <= end <= _MAX_OFFSET:
        raise BlobUploadInvalid(f"invalid Content-Range: {header!r}")
    if length is not None and length != end - start + 1:
        raise BlobUploadInvalid(f"Content-Range {header!r} does not match Content-Length {length}")
    return start, end - start + 1


# -- listings and referrers --------------------------------------------------------------


async def tags_list(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    name = request.path_params["name"]
    await authorize(request, repository_scope(name, "pull"))
    query = request.query_params
    page = services.listings.tags(
        registry, name, query.get("last"), page_size(query.get("n"), None)
    )
    body = orjson.dumps({"name": name, "tags": page.items})
    return Response(
        body, media_type="application/json", headers=next_link(f"/v2/{name}/tags/list", page)
    )


async def catalog(request: Request) -> Response:
    """`/v2/_catalog`, and ACR's `/acr/v1/_catalog`, which answers the same."""
    services, registry = _services(request), request_registry(request)
    await authorize(request, CATALOG)
    query = request.query_params
    n = page_size(query.get("n"), MAX_PAGE)
    assert n is not None
    page = services.listings.repositories(registry, query.get("last"), n)
    body = orjson.dumps({"repositories": page.items})
    return Response(body, media_type="application/json", headers=next_link(request.url.path, page))


async def referrers(request: Request) -> Response:
    services, registry = _services(request), request_registry(request)
    await authorize(request, repository_scope(request.path_params["name"], "pull"))
    artifact_type = request.query_params.get("artifactType")
    body = services.referrers.index(
        registry, request.path_params["name"], request.path_params["digest"], artifact_type
    )
    headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
    return Response(body, media_type=OCI_INDEX, headers=headers)


async def unsupported(request: Request) -> Response:
    raise Unsupported(f"{request.method} is not supported on {request.url.path}")


# Hot routes first: Starlette tries them in order.
# The first route: `app.ManifestReads` matches manifest GETs and HEADs against it before
# the router, which would find it first too.
MANIFEST_ROUTE = Route(
    "/v2/{name:path}/manifests/{reference}", manifest, methods=["GET", "HEAD", "PUT", "DELETE"]
)
routes = [
    MANIFEST_ROUTE,
    Route("/v2/{name:path}/blobs/{digest}", blob, methods=["GET", "HEAD", "DELETE"]),
    Route("/v2/{name:path}/blobs/uploads/", start_upload, methods=["POST"]),
    Route(
        "/v2/{name:path}/blobs/uploads/{uuid}", upload, methods=["GET", "PATCH", "PUT", "DELETE"]
    ),
    Route("/v2/", base, methods=["GET", "HEAD"]),
    Route("/v2/{name:path}/tags/list", tags_list, methods=["GET"]),
    Route("/v2/_catalog", catalog, methods=["GET"]),
    Route("/v2/{name:path}/referrers/{digest}", referrers, methods=["GET"]),
]
