"""What a region tells the global endpoint (`router`): `GET
/_dockyard/replication/v1/routing`, each registry here with its login server and its
replicas (this region first), each replica's `regionEndpointEnabled` and regional host,
and which registry answers hosts that name none (`default`).
The router is no region, so the peer credential alone is asked for (no region name);
anyone without it gets 401."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard.core.registries import regional_host
from dockyard.replication.peers import PREFIX
from dockyard.services import Services

ROUTING_PATH = PREFIX + "/routing"


def holds_secret(secret: str | None, authorization: str | None) -> bool:
    """Whether `authorization` is the bearer peer credential (compared in constant time)."""
    kind, _, token = (authorization or "").partition(" ")
    return (
        secret is not None
        and kind.lower() == "bearer"
        and hmac.compare_digest(token.encode(), secret.encode())
    )


async def routing_view(request: Request) -> Response:
    services: Services = request.app.state.services
    replications = services.replications
    if not holds_secret(replications.regions.secret, request.headers.get("authorization")):
        return JSONResponse({"error": "the peer credential is needed"}, status_code=401)
    default = services.settings.registry.default_name.lower()
    registries = []
    for record in services.registries.all():
        replicas = [
            {
                "region": replica.location,
                "regionEndpointEnabled": replica.region_endpoint_enabled,
                "host": regional_host(record.name, record.login_server, replica.location),
            }
            for replica in replications.list(record, with_lag=False)
        ]
        registries.append(
            {
                "name": record.name,
                "loginServer": record.login_server,
                "default": record.name == default,
                "replicas": replicas,
            }
        )
    return JSONResponse({"region": replications.regions.home, "registries": registries})


routes = [Route(ROUTING_PATH, routing_view, methods=["GET"])]
