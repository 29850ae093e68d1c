"""The one place the kernel's domain errors become wire errors: status codes, the OCI
error body, OAuth's for the token service. A feature adds its errors' statuses
(`Feature.statuses`) and its own shapes (`Feature.error_shapes`: ARM's is
`management/api/errors.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.responses import Response

from dockyard.common import errors as e

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


def add_statuses(statuses: Mapping[type[e.RegistryError], int]) -> None:
    """A feature's statuses for its own errors (`Feature.statuses`), added when the
    app is assembled: this module knows the kernel's errors only."""
    _STATUS.update(statuses)


def status_of(error: e.RegistryError) -> int:
    for cls in type(error).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 500


def error_body(code: str, message: str, detail: Any = None) -> bytes:
    """The OCI error body. A detail JSON cannot hold (what a client sent, echoed back:
    nested too deep, a number past 64 bits) is left out rather than failing the answer."""
    entry: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        entry["detail"] = detail
    try:
        return orjson.dumps({"errors": [entry]})
    except orjson.JSONEncodeError:
        return orjson.dumps({"errors": [{"code": code, "message": message}]})


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


# OAuth 2.0's error codes (RFC 6749 5.2) for the token endpoints' refusals, by the class
# of the domain error, unless the error names its own (`oauth_error`); and the number
# Entra ID gives each (`error_codes`, which az reads: 7000215 is its wrong-secret hint).
_OAUTH_ERRORS: dict[type[e.RegistryError], str] = {
    e.Unauthorized: "invalid_client",
    e.Denied: "unauthorized_client",
    e.TooManyRequests: "temporarily_unavailable",
    e.RequestInvalid: "invalid_request",
}
_ENTRA_NUMBERS = {
    "invalid_client": 7000215,
    "invalid_grant": 70000,
    "invalid_request": 900144,
    "invalid_scope": 70011,
    "invalid_tenant": 90002,
    "temporarily_unavailable": 50196,
    "unauthorized_client": 700016,
    "unsupported_grant_type": 70003,
}


def oauth_error_response(error: e.RegistryError, headers: dict[str, str] | None = None) -> Response:
    """OAuth's error body as Entra ID writes it (`error`, `error_description`,
    `error_codes`, `timestamp`): what MSAL, and so `az login`, reads from a refusal;
    and ACR's `errors` array beside it, which docker clients, the ACR SDK and
    `dockyard login` read from `/oauth2/token`."""
    name = getattr(error, "oauth_error", None) or next(
        (_OAUTH_ERRORS[cls] for cls in type(error).__mro__ if cls in _OAUTH_ERRORS),
        "server_error",
    )
    body = {
        "error": name,
        "error_description": error.message,
        "error_codes": [_ENTRA_NUMBERS.get(name, 0)],
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
        "errors": [{"code": error.code, "message": error.message}],
    }
    if isinstance(error, e.TooManyRequests):
        headers = {"Retry-After": str(error.retry_after), **(headers or {})}
    return Response(
        orjson.dumps(body),
        status_code=status_of(error),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})},
    )


def translate(exc: Exception) -> e.RegistryError | None:
    """Backend failures a client should see as 'try again', not as a server bug: the
    metadata database's and the S3 store's arrive as `MetadataUnavailable` and
    `StorageUnavailable` (domain errors) already; a local store's as `OSError`."""
    if isinstance(exc, e.Unavailable):
        return exc
    if isinstance(exc, OSError):
        return e.StorageUnavailable()
    return None
