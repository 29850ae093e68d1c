"""`dockyard router`: the global endpoint. Clients use the registry's ordinary login
server; the router sends each request to a healthy region (`routing`): blob GETs with a
307 to the region's URL (the bytes then flow from the region to the client), everything
else proxied, streamed both ways, with the client's Host, so the region answers for the
registry the client named and its token challenge points back at the router.

Every `[router] check_seconds` it reads each region's `/readyz` and routing view
(`routing_api`, with the peer credential). A region that refuses a connection is taken
out at once, and a request it could not take is tried at the next region (nothing of
its body was sent). Upload sessions live in the region that began them: the order of
regions is fixed for a client, so a session's requests reach that region while it
stays up."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from dockyard.replication.regions import Peer, region_key
from dockyard.replication.routed_blobs import BLOB_PATH, PARAMETER, route_key, signed
from dockyard.replication.routing import EMPTY, Preferences, Table, candidates
from dockyard.replication.routing_api import ROUTING_PATH
from dockyard.settings import Settings

log = logging.getLogger("dockyard.router")

SETTINGS_ENV = "DOCKYARD_ROUTER_SETTINGS"
REGION_HEADER = "X-Dockyard-Region"
CONNECT_SECONDS = 2.0
CHECK_TIMEOUT_SECONDS = 2.0  # the least a health check waits for its answers
# Headers of one connection, never passed on (RFC 9110 7.6.1), and Host, set apart.
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)


class Router:
    """The regions, their health and routing views, and the choice for each request."""

    def __init__(self, settings: Settings) -> None:
        self.regions = {
            region_key(p.name): Peer(p.name, p.url.rstrip("/")) for p in settings.region.peers
        }
        secret = settings.region.peer_secret
        self._secret = secret.get_secret_value() if secret is not None else None
        self.route_key = route_key(self._secret) if self._secret is not None else None
        self._settings = settings.router
        self.preferences = Preferences(settings.router, [p.name for p in settings.region.peers])
        self.healthy: set[str] = set()
        self.table: Table = EMPTY
        self._views: dict[str, Mapping[str, Any]] = {}
        # No cap on connections: a request waiting for a pooled one behind long uploads
        # would wait for ever (reads have no timeout: blobs stream as long as they take).
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(None, connect=CONNECT_SECONDS),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
            follow_redirects=False,
        )

    async def check(self) -> None:
        """Read every region's health and routing view once, at the same time. The
        table merges the last view of every region, up or not: a region that missed one
        check still says which replicas are out of routing (a down region itself is
        never chosen: `candidates` takes the healthy ones only)."""
        await asyncio.gather(*(self._check(name) for name in self.regions))
        self.table = Table.of(self._views.values())

    async def _check(self, name: str) -> None:
        url = self.regions[name].url
        # Long enough for a busy region to answer; a stopped one refuses at once.
        timeout = max(CHECK_TIMEOUT_SECONDS, min(self._settings.check_seconds, 5.0))
        try:
            ready = await self.http.get(url + "/readyz", timeout=timeout)
            headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
            view = await self.http.get(url + ROUTING_PATH, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            self.mark_down(name, type(exc).__name__)
            return
        if ready.status_code != 200:
            self.mark_down(name, f"/readyz answered {ready.status_code}")
            return
        try:
            found = view.json() if view.status_code == 200 else None
        except ValueError:
            found = None
        if found is not None:
            self._views[name] = found
        else:
            # Healthy, but the router cannot tell its replicas: it routes by the others'.
            self._views.pop(name, None)
            log.warning(
                "region's routing view refused",
                extra={"fields": {"region": name, "status": view.status_code}},
            )
        if name not in self.healthy:
            log.info("region up", extra={"fields": {"region": name}})
        self.healthy.add(name)

    def mark_down(self, name: str, reason: str) -> None:
        if name in self.healthy:
            log.warning("region down", extra={"fields": {"region": name, "reason": reason}})
        self.healthy.discard(name)

    def choose(self, request: Request) -> list[str]:
        client = request.client.host if request.client else None
        host = request.headers.get("host", "")
        return candidates(self.table, self.healthy, self.preferences.order(client), host)

    async def watch(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a bug here must not end routing: log it, go on
                log.exception("region check failed")
            await asyncio.sleep(self._settings.check_seconds)

    def redirects(self, request: Request) -> bool:
        return (
            self._settings.blob_redirects
            and request.method == "GET"
            and BLOB_PATH.match(request.url.path) is not None
        )


def _unavailable(message: str) -> Response:
    return JSONResponse(
        {"errors": [{"code": "UNAVAILABLE", "message": message, "detail": None}]},
        status_code=503,
        headers={"Retry-After": "1"},
    )


def _upstream_headers(request: Request) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
    headers.append(("Host", request.headers.get("host", "")))
    if request.client is not None:
        forwarded = request.headers.get("x-forwarded-for")
        client = request.client.host
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        headers.append(("X-Forwarded-For", f"{forwarded}, {client}" if forwarded else client))
    return headers


async def _send(
    router: Router, request: Request, order: list[str], method: str
) -> tuple[str, httpx.Response] | Response:
    """The request sent to the first region of `order` that takes it, and its answer
    (streamed), or the router's 503."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    body: AsyncIterator[bytes] | None = None
    if method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
        body = request.stream()
    for region in order:
        upstream = router.http.build_request(
            method,
            router.regions[region].url + target,
            headers=_upstream_headers(request),
            content=body,
        )
        try:
            return region, await router.http.send(upstream, stream=True)
        except httpx.ConnectError:
            # Nothing of the request reached the region: the next one may take it.
            router.mark_down(region, "connection refused")
        except httpx.HTTPError as exc:
            return _unavailable(f"region {region} broke off: {type(exc).__name__}")
    return _unavailable("no region of this registry answered")


async def _redirect(router: Router, request: Request, order: list[str]) -> Response | None:
    """A blob GET's 307 to the region, once a HEAD there with the client's credentials
    found the blob; None (proxy the GET instead) if it did not: the client then gets the
    region's own answer, a 401 challenge or a 404, body and all."""
    sent = await _send(router, request, order, "HEAD")
    if isinstance(sent, Response):
        return sent
    region, answer = sent
    await answer.aclose()
    if answer.status_code != 200 or router.route_key is None:
        return None
    path = request.url.path
    route = signed(router.route_key, request.headers.get("host", ""), path)
    query = [*request.query_params.multi_items(), (PARAMETER, route)]
    return RedirectResponse(
        f"{router.regions[region].url}{path}?{urlencode(query)}",
        status_code=307,
        headers={REGION_HEADER: region},
    )


async def handle(request: Request) -> Response:
    router: Router = request.app.state.router
    order = router.choose(request)
    if not order:
        return _unavailable("no region of this registry is up and routed to")
    if router.redirects(request):
        redirected = await _redirect(router, request, order)
        if redirected is not None:
            return redirected
    sent = await _send(router, request, order, request.method)
    if isinstance(sent, Response):
        return sent
    region, answer = sent
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
    headers[REGION_HEADER] = region
    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers=headers,
        background=BackgroundTask(answer.aclose),
    )


async def healthz(request: Request) -> Response:
    """The router itself answers (the regions' own /healthz is theirs to answer)."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready while some region is: the router can route."""
    router: Router = request.app.state.router
    healthy = sorted(router.healthy)
    return JSONResponse({"regions": healthy}, status_code=200 if healthy else 503)


def create_router_app(settings: Settings) -> Starlette:
    router = Router(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.router = router
        await router.check()
        watcher = asyncio.create_task(router.watch())
        try:
            yield
        finally:
            watcher.cancel()
            await router.http.aclose()

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/{path:path}", handle, methods=methods),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def asgi_app() -> Starlette:
    """Granian's factory, with the settings `dockyard router` resolved."""
    from dockyard.logs import configure_logging

    settings = Settings.model_validate(orjson.loads(os.environ[SETTINGS_ENV]))
    configure_logging(settings.server.log_level)
    return create_router_app(settings)
