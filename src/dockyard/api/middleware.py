"""The outermost layer: one log line per request, its metrics (`api.metrics`), what the
features' recorders keep of it (`Feature.recorders`: the audit log's row), and no
exception ever reaches a client as a traceback: backend outages become 503, a request
body that breaks off 400, anything else a plain 500 error body (ARM's shape under the
management API, the registry API's elsewhere)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence

from starlette.requests import ClientDisconnect

from dockyard.api.errors import error_body, status_of, translate
from dockyard.api.metrics import Metrics
from dockyard.api.network import CLIENT_ADDRESS
from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.common.request_context import RequestInfo, current_request, new_request_id
from dockyard.feature import ErrorShape, RequestRecorder

log = logging.getLogger("dockyard.access")
errors_log = logging.getLogger("dockyard.errors")


class RequestLog:
    def __init__(  # type: ignore[no-untyped-def]
        self,
        app,
        metrics: Metrics | None,
        recorders: Sequence[RequestRecorder],
        shapes: Mapping[str, ErrorShape] | None = None,
    ) -> None:
        """`recorders`: the features' (`Feature.recorders`), called after each response;
        `shapes`: the features' error shapes by path prefix (`Feature.error_shapes`)."""
        self.app = app
        self._metrics = metrics
        self._records = tuple(recorder.record for recorder in recorders)
        self._shapes = tuple((shapes or {}).items())

    def _answer(self, path: str, error: RegistryError) -> tuple[int, bytes]:
        """The status and body of an error no handler answered, in the shape of the API
        the path is under: a feature's (ARM's under the management API's paths), else
        the registry API's."""
        for prefix, shape in self._shapes:
            if path.startswith(prefix):
                return shape(error)
        return status_of(error), error_body(error.code, error.message)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        info = _request_info(scope)
        request = current_request.set(info)
        state = {"status": 0, "bytes": 0, "bytes_in": 0}
        headers: list = []

        async def counted_receive():  # type: ignore[no-untyped-def]
            message = await receive()
            state["bytes_in"] += len(message.get("body", b""))
            return message

        async def observed_send(message) -> None:  # type: ignore[no-untyped-def]
            kind = message["type"]
            if kind == "http.response.start":
                state["status"] = message["status"]
                headers.extend(message.get("headers", ()))
            elif kind == "http.response.body":
                state["bytes"] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counted_receive, observed_send)
        except Exception as exc:
            error = translate(exc)
            if isinstance(exc, ClientDisconnect):
                # The body ended before its end: the client hung up, or sent what granian
                # could not parse (an invalid chunk size), which it reports alike. The
                # client's doing, not a bug: one line, and a 400 if it is still there.
                errors_log.info(
                    "client disconnected",
                    extra={"fields": {"path": scope["path"], "bytes_in": state["bytes_in"]}},
                )
                error = RequestInvalid("the request body broke off or could not be read")
                status, body = self._answer(scope["path"], error)
            elif error is None:
                errors_log.exception("unhandled error", extra={"fields": {"path": scope["path"]}})
                status, body = self._answer(scope["path"], RegistryError("internal server error"))
            else:
                errors_log.warning("backend unavailable: %s", exc.__class__.__name__)
                status, body = self._answer(scope["path"], error)
            if state["status"] == 0:
                await observed_send(
                    {
                        "type": "http.response.start",
                        "status": status,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await observed_send({"type": "http.response.body", "body": body})
        finally:
            current_request.reset(request)
        elapsed = time.perf_counter() - started
        try:
            if self._metrics is not None:
                self._metrics.observe(
                    scope.get("endpoint"),
                    scope["method"],
                    state["status"],
                    state["bytes_in"],
                    state["bytes"],
                    elapsed,
                )
            for record in self._records:
                record(scope, info, state["status"], headers, state["bytes"], elapsed)
        except Exception:
            errors_log.exception("request bookkeeping failed")
        if log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            remote = scope.get("state", {}).get(CLIENT_ADDRESS, client[0] if client else None)
            log.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": state["status"],
                        "bytes_out": state["bytes"],
                        "ms": round(elapsed * 1000, 2),
                        "remote": remote,
                    }
                },
            )


def _request_info(scope) -> RequestInfo:  # type: ignore[no-untyped-def]
    """What outbox events record of the request (`common.request_context`)."""
    headers = dict(scope.get("headers", ()))
    return RequestInfo(
        id=new_request_id(),
        host=headers.get(b"host", b"").decode("latin-1"),
        method=scope["method"],
        useragent=headers.get(b"user-agent", b"").decode("latin-1"),
    )
