"""`/healthz` (the process answers) and `/readyz` (database and blob storage usable:
`Registries.ready` and the default registry's `BlobStore.check`)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        services.registries.ready()
        checks["metadata"] = "ok"
    except Exception as exc:
        checks["metadata"] = f"failed: {exc.__class__.__name__}"
    try:
        registry = services.registries.for_host("")
        services.stores.for_registry(registry.name).check()
        checks["storage"] = "ok"
    except Exception as exc:
        checks["storage"] = f"failed: {exc.__class__.__name__}"
    ready = all(v == "ok" for v in checks.values())
    return Response(
        orjson.dumps({"status": "ok" if ready else "unavailable", "checks": checks}),
        status_code=200 if ready else 503,
        media_type="application/json",
    )


routes = [
    Route("/healthz", healthz, methods=["GET", "HEAD"]),
    Route("/readyz", readyz, methods=["GET", "HEAD"]),
]
