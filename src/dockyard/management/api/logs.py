"""`registries/{name}/logs`, a Dockyard extension to ARM (Azure Monitor serves these
tables on ACR): the registry's audit log, `?kind=repository|login` with the filters of
`dockyard logs query` (`since`, `until`, `identity`, `repository`, `operation`,
`result`, `top`), rows with ACR's column names in `{"value": [...]}`, newest first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.audit.log import AuditFilter, LogKind, moment
from dockyard.auth.management import READ
from dockyard.management.api.arm import (
    InvalidRequestContent,
    endpoint,
    json_response,
    registry_for,
    services_of,
)
from dockyard.management.api.registries import REGISTRY

MAX_TOP = 10_000


@endpoint
async def query_logs(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    params = request.query_params
    kind = params.get("kind", "repository")
    if kind not in ("repository", "login"):
        raise InvalidRequestContent("kind must be repository or login")
    now = datetime.now(UTC)
    try:
        bounds = {
            name: moment(params[name], now) if name in params else None
            for name in ("since", "until")
        }
        top = int(params.get("top", "1000"))
    except ValueError as exc:
        raise InvalidRequestContent(str(exc)) from None
    if not 1 <= top <= MAX_TOP:
        raise InvalidRequestContent(f"top must be 1 to {MAX_TOP}")
    wanted = AuditFilter(
        **bounds,
        identity=params.get("identity"),
        repository=params.get("repository"),
        operation=params.get("operation"),
        result=params.get("result"),
    )
    log_kind: LogKind = "login" if kind == "login" else "repository"
    rows = await asyncio.to_thread(
        services_of(request).audit.query, resource.record, log_kind, wanted, top
    )
    return json_response({"value": rows})


routes = [Route(REGISTRY + "/logs", query_logs, methods=["GET"])]
