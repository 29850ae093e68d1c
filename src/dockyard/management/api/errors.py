"""ARM's error shape (`{"error": {"code", "message"}}`) and codes for the management API:
the one place a domain error becomes an ARM error. Core's errors carry OCI codes; the
ARM code of each is chosen here (`_ARM_CODES_OF`, by class, then `_ARM_CODES`, by OCI
code); errors made for the management API carry ARM's code already."""

from __future__ import annotations

import logging

import orjson
from starlette.responses import Response

from dockyard.api.errors import status_of, translate
from dockyard.auth.administration import InvalidChange
from dockyard.common import errors as e
from dockyard.management.operations import Failure

log = logging.getLogger(__name__)

# ARM's codes for the registry errors whose own code is an OCI one.
_ARM_CODES = {
    "INVALID_REQUEST": "BadRequest",
    "NAME_INVALID": "InvalidResourceName",
    "UNAUTHORIZED": "AuthenticationFailed",
    "DENIED": "AuthorizationFailed",
    "TOOMANYREQUESTS": "TooManyRequests",
    "UNAVAILABLE": "ServiceUnavailable",
    "UNKNOWN": "InternalServerError",
}


# ARM's codes for the kernel's errors that ARM names better than their OCI code does.
_ARM_CODES_OF: dict[type[e.RegistryError], str] = {
    e.TagExists: "Conflict",
    e.TierLimit: "QuotaExceeded",
    e.RegistryHostInvalid: "InvalidParameter",
}


def arm_error(error: e.RegistryError | InvalidChange) -> tuple[int, str, str]:
    """(status, ARM code, message). A refused change of access (`InvalidChange`) is a
    bad request."""
    if isinstance(error, InvalidChange):
        return 400, "BadRequest", str(error)
    code = next(
        (_ARM_CODES_OF[cls] for cls in type(error).__mro__ if cls in _ARM_CODES_OF), error.code
    )
    if isinstance(error, e.Conflict) and code == e.Conflict.code:
        code = "Conflict"
    return status_of(error), _ARM_CODES.get(code, code), error.message


def arm_error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})


def arm_body_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        arm_error_body(code, message),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


def arm_error_response(
    error: e.RegistryError | InvalidChange, headers: dict[str, str] | None = None
) -> Response:
    """ARM's error body."""
    return arm_body_response(*arm_error(error), headers=headers)


def arm_shape(error: e.RegistryError) -> tuple[int, bytes]:
    """The status and body of an error no handler answered under the management API's
    paths (`Feature.error_shapes`)."""
    status, code, message = arm_error(error)
    return status, arm_error_body(code, message)


def operation_failure(exc: Exception, kind: str) -> Failure:
    """What a poll of a failed long-running operation (a `kind`) answers. An error no
    rule names is a bug: its text (which may hold paths or addresses) goes to the log
    only."""
    error = exc if isinstance(exc, e.RegistryError) else translate(exc)
    if error is None:
        log.exception("%s failed", kind, exc_info=exc)
        return Failure(
            500, "InternalServerError", f"the {kind} failed on a server error; its log tells more"
        )
    return Failure(*arm_error(error))
