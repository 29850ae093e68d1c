"""`dockyard router`: the global endpoint of a geo-replicated deployment
(`replication/router.py`), in front of the regions `[region] peers` lists, which share
`[region] peer_secret` with it. It keeps no data: no data directory, no database."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from dockyard.cli.local import OFFLINE, ConfigOption, fail


def router(
    config: ConfigOption = None,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to listen on (server.listen; default localhost:5000)."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Worker processes, each checking the regions itself (server.workers; "
            "default one per CPU)."
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="debug, info, warning or error (server.log_level; default info)."),
    ] = None,
) -> None:
    """Serve the registries' global endpoint: each request goes to a healthy region that
    is routed to, in the order router.prefer or router.networks give (blob GETs
    redirected, the rest proxied). The regions come from region.peers (name, url), their
    credential from region.peer_secret (better: DOCKYARD_REGION__PEER_SECRET).
    docs/geo-replication.md, "Routing"."""
    import orjson
    from granian import Granian
    from granian.constants import Interfaces, Loops
    from granian.log import LogLevels

    from dockyard.logs import configure_logging
    from dockyard.replication.router import SETTINGS_ENV
    from dockyard.settings import load_settings

    flags = (("listen", listen), ("workers", workers), ("log_level", log_level))
    server = {k: v for k, v in flags if v is not None}
    settings = load_settings(config, **({"server": server} if server else {}))
    if not settings.region.peers:
        fail("the router needs the regions: list them in [[region.peers]] (name, url)")
    if settings.region.peer_secret is None:
        fail("the router needs region.peer_secret to read the regions' routing views")
    configure_logging(settings.server.log_level)
    data = settings.model_dump(mode="json")
    data["region"]["peer_secret"] = settings.region.peer_secret.get_secret_value()
    os.environ[SETTINGS_ENV] = orjson.dumps(data).decode()
    host, _, port = settings.server.listen.rpartition(":")
    Granian(
        "dockyard.replication.router:asgi_app",
        factory=True,
        address=host.strip("[]") or "127.0.0.1",
        port=int(port),
        interface=Interfaces.ASGI,
        workers=settings.server.workers,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
        backlog=2048,
    ).serve()


def register(app: typer.Typer) -> None:
    app.command("router", rich_help_panel=OFFLINE)(router)
