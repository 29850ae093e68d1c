"""The peer-facing endpoints under `/_dockyard/replication/v1/`: only a known peer with
the shared peer credential (`peers.accepts`) is answered; anyone else gets 401 with no
hint of why."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.replication.peers import PREFIX, REGION_HEADER, accepts
from dockyard.services import Services


def _services(request: Request) -> Services:
    return request.app.state.services


def _from_peer(request: Request) -> bool:
    regions = _services(request).replications.regions
    return accepts(
        regions, request.headers.get(REGION_HEADER), request.headers.get("authorization")
    )


def _refused() -> Response:
    return JSONResponse({"error": "not a peer region of this deployment"}, status_code=401)


async def ping(request: Request) -> Response:
    """A peer asks whether this region knows it and shares its credential."""
    if not _from_peer(request):
        return _refused()
    return JSONResponse({"region": _services(request).replications.regions.home})


routes = [Route(PREFIX + "/ping", ping, methods=["GET"])]
