"""The URL a git host's push webhook calls for a task's source trigger:
`POST /_tasks/hooks/<registry>/<task>` (`source_triggers.py` decides what it does). The
signature is the only credential, as with GitHub's webhooks: no login, and no registry's
network rules (a git host's deliveries reach ACR Tasks, not the registry's endpoint,
on ACR too: `feature.py` makes the prefix a public path). Answers 202 with
the run queued, 200 when the delivery starts nothing (a ping, another branch, a disabled
task), 401 for a body not signed with a trigger's secret, 404 for no such task, 400 for
a payload that is no push; errors as `{"error": {"code", "message"}}`."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.common.errors import RequestInvalid
from dockyard.tasks.definitions import TaskUnknown
from dockyard.tasks.requests import RunRequestInvalid, RunRequestUnsupported
from dockyard.tasks.source_triggers import (
    MAX_BODY_BYTES,
    HookPayloadInvalid,
    HookSignatureInvalid,
)


def _answer(status: int, body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, exc: RequestInvalid) -> Response:
    return _answer(status, {"error": {"code": exc.code, "message": exc.message}})


async def push(request: Request) -> Response:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _answer(413, {"error": {"code": "PayloadTooLarge", "message": "too large"}})
    services = request.app.state.services
    try:
        outcome = await asyncio.to_thread(
            services.source_triggers.delivered,
            request.path_params["registry"],
            request.path_params["task"],
            request.headers.get("x-github-event", ""),
            request.headers.get("x-hub-signature-256"),
            request.headers.get("x-github-delivery"),
            bytes(body),
        )
    except HookSignatureInvalid as exc:
        return _error(401, exc)
    except TaskUnknown as exc:
        return _error(404, exc)
    except (HookPayloadInvalid, RunRequestInvalid, RunRequestUnsupported) as exc:
        return _error(400, exc)
    except RequestInvalid as exc:  # the task cannot run as it stands (no context, ...)
        return _error(409, exc)
    if outcome.run is None:
        return _answer(200, {"queued": None, "message": outcome.reason})
    return _answer(202, {"queued": outcome.run.run_id, "message": outcome.reason})


PREFIX = "/_tasks/hooks/"
routes = [Route(PREFIX + "{registry}/{task}", push, methods=["POST"])]
