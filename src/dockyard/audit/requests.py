"""The audit log's `RequestRecorder` (`Feature.recorders`): which requests the request
path adds to the audit log, and the row each gives: every manifest GET (a Pull), and the
pushes, untags and deletes that did not write an outbox event (refused, failed, or a
re-push that changed nothing); the outbox's `audit` consumer writes the others
(`audit.log`). `RequestLog` calls `record` once per request, after the response went
out; the rows wait in `AuditLog`'s buffer for the server's `flush`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus

from prometheus_client import CollectorRegistry, Counter
from starlette.types import Scope

from dockyard.api import acr, distribution
from dockyard.api.network import CLIENT_ADDRESS
from dockyard.audit.log import AuditLog, RepositoryEventRecord
from dockyard.common.request_context import RequestInfo
from dockyard.core.digests import is_digest

_PHRASES = {status.value: status.phrase for status in HTTPStatus}
# (handler, method) -> (operation, the path parameter naming the tag or digest)
_AUDITED: dict[tuple[Callable, str], tuple[str, str | None]] = {
    (distribution.manifest, "GET"): ("Pull", "reference"),
    (distribution.manifest, "PUT"): ("Push", "reference"),
    (distribution.manifest, "DELETE"): ("Delete", "reference"),  # Untag by tag
    (acr.manifest, "DELETE"): ("Delete", "digest"),
    (acr.tag, "DELETE"): ("Untag", "tag"),
    (acr.repository, "DELETE"): ("Delete", None),
}


class RequestRows:
    """One per app (per server process): its rows go to the process's `AuditLog`
    buffer; a row the full buffer drops is counted on `/metrics` when metrics are on."""

    def __init__(self, log: AuditLog, metrics: CollectorRegistry | None) -> None:
        self._log = log
        self._dropped: Counter | None = None
        if metrics is not None:
            self._dropped = Counter(
                "dockyard_audit_rows_dropped",
                "Audit rows of the request path dropped because the buffer was full",
                registry=metrics,
            )

    def record(
        self,
        scope: Scope,
        info: RequestInfo,
        status: int,
        headers: list[tuple[bytes, bytes]],
        bytes_out: int,
        seconds: float,
    ) -> None:
        """Buffer the request's row if it gives one."""
        audited = _AUDITED.get((scope.get("endpoint"), scope["method"]))  # type: ignore[arg-type]
        if audited is None:
            return
        operation, parameter = audited
        if status < 400 and (info.evented if operation != "Pull" else not self._log.pulls):
            return  # the outbox event gives the row, or pulls are not recorded
        params = scope.get("path_params", {})
        reference = params.get(parameter) if parameter else None
        digest = reference if reference and is_digest(reference) else None
        tag = None if digest or not reference else reference
        if operation == "Delete" and tag is not None:
            operation = "Untag"
        pulled = operation == "Pull" and status < 400
        media_type = None
        if pulled:
            for name, value in headers:
                if name == b"docker-content-digest" and digest is None:
                    digest = value.decode("latin-1")
                elif name == b"content-type":
                    media_type = value.decode("latin-1")[:255]
        row = RepositoryEventRecord(
            time=datetime.now(UTC),
            operation=operation,
            repository=params.get("name", "")[:255],
            result_type=str(status),
            result_description=_PHRASES.get(status),
            tag=None if tag is None else tag[:128],
            digest=None if digest is None else digest[:160],
            identity=info.identity,
            caller_ip=info.caller_ip or scope.get("state", {}).get(CLIENT_ADDRESS),
            user_agent=info.useragent or None,
            login_server=info.host[:255] or None,
            correlation_id=info.id,
            size=bytes_out if pulled else None,
            media_type=media_type,
            duration_ms=round(seconds * 1000),
        )
        if not self._log.buffer(row) and self._dropped is not None:
            self._dropped.inc()

    def flush(self) -> None:
        self._log.flush()
