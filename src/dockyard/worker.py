"""`dockyard worker`: the deployment's background work in a process of its own (see
`dockyard.background`), for scale-out deployments whose servers run with
`worker.in_process = false`. Stops cleanly on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from dockyard.background import background_work, run_background
from dockyard.features import FEATURES
from dockyard.logs import configure_logging
from dockyard.server import ensure_schema
from dockyard.services import Services, build_services
from dockyard.settings import Settings

log = logging.getLogger("dockyard")


def run_worker(settings: Settings) -> None:
    configure_logging(settings.server.log_level)
    ensure_schema(settings)
    services = build_services(settings)
    try:
        asyncio.run(_main(services))
    finally:
        services.close()
    log.info("worker stopped")


async def _main(services: Services) -> None:
    background = background_work(services, FEATURES)
    log.info(
        "worker started",
        extra={"fields": {"features": [f.name for f in FEATURES], "runs": list(background)}},
    )
    work = asyncio.create_task(run_background(background))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, work.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await work
