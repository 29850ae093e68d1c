"""`create_app`: the ASGI application, built from `Services` with no global state, so
tests can drive it in-process and the server can build one per worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp

from dockyard.api import acr, distribution, health, metrics, oauth2
from dockyard.api.authorization import challenge_headers
from dockyard.api.errors import add_statuses, error_body, error_response
from dockyard.api.middleware import RequestLog
from dockyard.api.network import NetworkRules
from dockyard.background import (
    background_work,
    flush_request_records,
    run_background,
    write_request_records,
)
from dockyard.common.errors import (
    MetadataUnavailable,
    RegistryError,
    StorageUnavailable,
    TooManyRequests,
    Unauthorized,
)
from dockyard.features import FEATURES
from dockyard.services import Services

errors_log = logging.getLogger("dockyard.errors")
_DRAIN_LIMIT = 16 * 1024 * 1024


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthorized):
        headers = challenge_headers(request, exc)
    elif isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, (MetadataUnavailable, StorageUnavailable)):
        # As RequestLog logs one that leaves a middleware: the driver's error, no traceback.
        errors_log.warning("backend unavailable: %s", type(exc.__cause__ or exc).__name__)
    await _drain(request)
    response = error_response(exc, headers)
    if request.method == "HEAD":
        response.body = b""
    return response


async def _drain(request: Request, limit: int = _DRAIN_LIMIT) -> None:
    """Read what is left of a refused request's body, so the client, still sending (the
    Azure SDK sends each chunk unauthenticated first, expecting the 401), can read the
    answer instead of a reset connection. Bounded: past `limit` the connection may drop."""
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                return
    except RuntimeError:  # the handler had consumed the body already
        return


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "UNSUPPORTED"}.get(exc.status_code, "UNKNOWN")
    body = b"" if request.method == "HEAD" else error_body(code, str(exc.detail))
    return Response(body, status_code=exc.status_code, media_type="application/json")


class ManifestReads:
    """Manifest GETs and HEADs straight to their handler, past Starlette's exception
    middleware, router and request wrapper: these are most of a registry's requests,
    and those layers cost about a sixth of one. The route is the router's first, so it
    matches them exactly as the router would; a registry error is answered as the
    exception middleware would (`_registry_error`), anything else goes up to
    `RequestLog` as from the router."""

    def __init__(self, app, route: Route) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self._route = route

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            match, child = self._route.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                request = Request(scope, receive, send)
                try:
                    response = await self._route.endpoint(request)
                except RegistryError as exc:
                    response = await _registry_error(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _nothing() -> None:
    """`publish` when metrics are off."""


class _Application(Starlette):
    """Starlette without its outermost layer, `ServerErrorMiddleware`: `RequestLog` is
    outermost here and answers any unhandled error itself (logged, a plain 500), so
    that layer only added a coroutine and a send wrapper to every request."""

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        assert isinstance(stack, ServerErrorMiddleware), stack
        return stack.app


def create_app(services: Services, background: bool = True) -> Starlette:
    """The kernel's routes and middleware, then each feature's routes, middleware,
    metrics, request recorders and error statuses (`dockyard.features`)."""
    for feature in FEATURES:
        add_statuses(feature.statuses())
    exporter = None
    if services.settings.metrics.enabled:
        collectors = [c for feature in FEATURES for c in feature.collectors(services)]
        exporter = metrics.Metrics(services, collectors)
    publish = exporter.publish if exporter is not None else _nothing
    counters = exporter.registry if exporter is not None else None
    recorders = [r for feature in FEATURES for r in feature.recorders(services, counters)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(flush_request_records(services, publish, recorders))]
        if background and services.settings.worker.in_process:
            tasks.append(asyncio.create_task(run_background(background_work(services, FEATURES))))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            publish()
            await write_request_records(recorders)
            services.close()

    app = _Application(
        routes=[
            *distribution.routes,
            *(route for feature in FEATURES for route in feature.routes(services.settings)),
            *acr.routes,
            *oauth2.routes,
            *health.routes,
            *(metrics.routes if exporter is not None else []),
        ],
        middleware=[
            Middleware(
                RequestLog,
                metrics=exporter,
                recorders=recorders,
                shapes={p: s for f in FEATURES for p, s in f.error_shapes().items()},
            ),
            Middleware(
                NetworkRules,
                services=services,
                exempt=frozenset().union(*(f.public_paths(services.settings) for f in FEATURES)),
            ),
            *(layer for feature in FEATURES for layer in feature.middleware(services)),
            Middleware(ManifestReads, route=distribution.MANIFEST_ROUTE),
        ],
        exception_handlers={RegistryError: _registry_error, HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.metrics = exporter
    return app
