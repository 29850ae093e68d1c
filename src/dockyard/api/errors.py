"""The one place domain errors become wire errors: status codes and the OCI error body."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.exc import OperationalError
from starlette.responses import Response

from dockyard.core import errors as e

_STATUS: dict[type[e.RegistryError], int] = {
    e.BlobUnknown: 404,
    e.RangeInvalid: 416,
    e.BlobUploadInvalid: 400,
    e.BlobUploadUnknown: 404,
    e.DigestInvalid: 400,
    e.ManifestBlobUnknown: 400,
    e.ManifestTooLarge: 413,
    e.ManifestInvalid: 400,
    e.ManifestUnknown: 404,
    e.NameInvalid: 400,
    e.NameUnknown: 404,
    e.SizeInvalid: 400,
    e.PaginationInvalid: 400,
    e.RequestInvalid: 400,
    e.Unsupported: 405,
    e.Unavailable: 503,
    e.Unauthorized: 401,
    e.Conflict: 409,
    e.Denied: 403,
    e.TooManyRequests: 429,
}


def status_of(error: e.RegistryError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_body(code: str, message: str, detail: Any = None) -> bytes:
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    return orjson.dumps({"errors": [entry]})


def error_response(error: e.RegistryError, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        error_body(error.code, error.message, error.detail),
        status_code=status_of(error),
        media_type="application/json",
        headers=headers,
    )
    if isinstance(error, e.RangeInvalid) and isinstance(error.detail, dict):
        size = error.detail.get("size", 0)
        response.headers["Range"] = f"0-{max(size - 1, 0)}"
    return response


def translate(exc: Exception) -> e.RegistryError | None:
    """Backend failures a client should see as 'try again', not as a server bug."""
    if isinstance(exc, OperationalError):
        return e.Unavailable("the metadata database is unavailable; retry shortly")
    if isinstance(exc, OSError):
        return e.Unavailable("blob storage is unavailable; retry shortly")
    return None
