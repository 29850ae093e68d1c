"""The part of Azure Blob's protocol `az acr build|run` speaks to the URLs the management
API hands out (`signed_urls.TaskUrls`), served under `/_tasks/<container>/<blob>`:

- a build context's upload (`r<registry>-sources`): Put Blob (one PUT, `x-ms-blob-type:
  BlockBlob`) or Put Block (`comp=block&blockid=`) then Put Block List
  (`comp=blocklist`), each 201 with `ETag` and `Last-Modified`;
- a run's log (`r<registry>-logs/<run id>.log`): HEAD (404 `BlobNotFound` before the run
  starts; then `Content-Length` = the bytes written so far and, once the run ended,
  `x-ms-meta-Complete` with its outcome, the only thing that ends az's polling) and GET
  with `x-ms-range` (206 with `Content-Range`).

The signed query string is the only credential (Blob clients send no `Authorization`);
errors are Blob's XML with `x-ms-error-code`."""

from __future__ import annotations

import asyncio
import hashlib
import re
from email.utils import format_datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.common.errors import RegistryError
from dockyard.tasks.runs import RunUnknown
from dockyard.tasks.signed_urls import READ, WRITE, SignatureInvalid
from dockyard.tasks.sources import SourceInvalid, SourceTooLarge, SourceUnknown

_CONTAINER = re.compile(r"r([0-9]{1,12})-(sources|logs)")
_RANGE = re.compile(r"bytes=([0-9]+)-([0-9]*)")
_BLOCK = re.compile(r"<(Latest|Committed|Uncommitted)>([^<]{1,200})</\1>")
_BLOCK_LIST_MAX = 1024 * 1024
# What `x-ms-meta-Complete` says of each finished run (what az's log reader expects).
_COMPLETE = {
    "Succeeded": "successful",
    "Failed": "failed",
    "Canceled": "canceled",
    "Timeout": "timedout",
    "Error": "internalerror",
}


def _error(status: int, code: str, message: str) -> Response:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><Error>'
        f"<Code>{code}</Code><Message>{_xml_text(message)}</Message></Error>"
    )
    return Response(
        body.encode(),
        status_code=status,
        media_type="application/xml",
        headers={"x-ms-error-code": code},
    )


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _services(request: Request) -> Any:
    return request.app.state.services


def _check(request: Request, permission: str) -> tuple[int, str, str]:
    """(registry id, `sources` or `logs`, blob name) once the URL's signature grants
    `permission` on them."""
    container, blob = request.path_params["container"], request.path_params["blob"]
    found = _CONTAINER.fullmatch(container)
    if found is None:
        raise SourceUnknown("no such container")
    services = _services(request)
    services.task_urls.signer.check(
        f"{container}/{blob}", permission, dict(request.query_params), services.clock()
    )
    return int(found.group(1)), found.group(2), blob


def _created(request: Request, etag: str) -> Response:
    now = _services(request).clock()
    return Response(
        status_code=201,
        headers={
            "ETag": f'"{etag}"',
            "Last-Modified": format_datetime(now, usegmt=True),
            "x-ms-request-server-encrypted": "false",
        },
    )


async def put_blob(request: Request) -> Response:
    try:
        registry_id, kind, name = _check(request, WRITE)
        if kind != "sources":
            raise SourceUnknown("only build contexts are uploaded")
        sources = _services(request).build_sources
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > sources.max_bytes:
            raise SourceTooLarge(f"a build context may hold at most {sources.max_bytes} bytes")
        comp = request.query_params.get("comp")
        if comp is None:
            if request.headers.get("x-ms-blob-type", "BlockBlob") != "BlockBlob":
                raise SourceInvalid("only block blobs are accepted")
            size = await sources.put(registry_id, name, request.stream())
        elif comp == "block":
            size = await sources.put_block(
                registry_id, name, request.query_params.get("blockid", ""), request.stream()
            )
        elif comp == "blocklist":
            body = await _bounded(request, _BLOCK_LIST_MAX)
            ids = [m.group(2) for m in _BLOCK.finditer(body.decode("utf-8", "replace"))]
            size = sources.commit_blocks(registry_id, name, ids)
        else:
            raise SourceInvalid(f"comp={comp} is not supported here")
    except SignatureInvalid as exc:
        return _error(403, "AuthenticationFailed", exc.message)
    except SourceTooLarge as exc:
        return _error(413, "RequestBodyTooLarge", exc.message)
    except RegistryError as exc:
        return _error(400, "InvalidInput", exc.message)
    return _created(request, hashlib.sha256(f"{name}:{size}".encode()).hexdigest()[:32])


async def _bounded(request: Request, limit: int) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise SourceInvalid("the block list is too long")
    return body


async def read_log(request: Request) -> Response:
    """HEAD: what is there and whether it is complete; GET: a range of it."""
    try:
        registry_id, kind, blob = _check(request, READ)
        if kind != "logs" or not blob.endswith(".log"):
            raise SourceUnknown("no such log")
        services = _services(request)
        run = await asyncio.to_thread(
            services.runs.get_by_id, registry_id, blob.removesuffix(".log")
        )
    except SignatureInvalid as exc:
        return _error(403, "AuthenticationFailed", exc.message)
    except (RunUnknown, SourceUnknown):
        return _error(404, "BlobNotFound", "The specified blob does not exist.")
    # The outcome is read before the size: a finished run's log is whole.
    complete = _COMPLETE.get(run.status)
    size = services.run_logs.size(registry_id, run.number)
    if size is None:
        return _error(404, "BlobNotFound", "The specified blob does not exist.")
    headers = {
        "x-ms-blob-type": "BlockBlob",
        "Last-Modified": format_datetime(run.updated_at, usegmt=True),
        "ETag": f'"{run.number}-{size}"',
        "Accept-Ranges": "bytes",
        "Content-Type": "text/plain; charset=utf-8",
    }
    if complete is not None:
        headers["x-ms-meta-Complete"] = complete
    if request.method == "HEAD":
        return Response(status_code=200, headers={**headers, "Content-Length": str(size)})
    wanted = request.headers.get("x-ms-range") or request.headers.get("range")
    found = None if wanted is None else _RANGE.fullmatch(wanted.strip())
    if wanted is not None and found is None:
        return _error(400, "InvalidHeaderValue", "the range must be bytes=START-[END]")
    start = 0 if found is None else int(found.group(1))
    end = size - 1 if found is None or not found.group(2) else min(int(found.group(2)), size - 1)
    if found is not None and (start >= size or end < start):
        return _error(416, "InvalidRange", "The range specified is invalid for the current size.")
    data = (
        await asyncio.to_thread(services.run_logs.read, registry_id, run.number, start, end)
        if size
        else b""
    )
    if found is None:
        return Response(data, status_code=200, headers=headers)
    headers["Content-Range"] = f"bytes {start}-{start + len(data) - 1}/{size}"
    return Response(data, status_code=206, headers=headers)


routes = [
    Route("/_tasks/{container}/{blob:path}", put_blob, methods=["PUT"]),
    Route("/_tasks/{container}/{blob:path}", read_log, methods=["GET", "HEAD"]),
]
