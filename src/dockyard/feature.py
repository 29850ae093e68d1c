"""The seam through which a feature plugs into the registry: what it adds to the server
(routes, middleware, metrics, what it records of each request, error statuses, pull and
push policies), to the background work (outbox consumers, jobs) and to the `dockyard`
command (verbs), and its services.
`dockyard.features.FEATURES` lists the features; the services (`services.py`), the
server (`app.py`), the background work (`background.py`, run by the server or `dockyard
worker`) and the CLI (`cli/main.py`) read that list, so adding a feature edits none of
them but for a typed field in `Services`.

A feature is declared in its package's `feature.py`, which imports only this module at
its top: the CLI reads `FEATURES` for its verbs and must start without the server's
imports, so each hook imports what it needs when it is called."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import typer
    from prometheus_client import CollectorRegistry
    from prometheus_client.registry import Collector
    from starlette.middleware import Middleware
    from starlette.routing import BaseRoute
    from starlette.types import Scope

    from dockyard.common.errors import RegistryError
    from dockyard.common.request_context import RequestInfo
    from dockyard.core.policies import PullPolicy, PushHold, PushPolicy
    from dockyard.events import Consumer
    from dockyard.services import Services
    from dockyard.settings import Settings

# The status and body of a domain error no handler answered, in a feature's wire shape.
ErrorShape = Callable[["RegistryError"], tuple[int, bytes]]


class RequestRecorder(Protocol):
    """Keeps something of each request a server process answered (the audit log's rows).
    `record` runs on the event loop after the response went out, for every request, so
    it only buffers, as cheaply as it can; the server calls `flush`, in a thread, every
    `[audit] flush_seconds` and at shutdown, to write what the process buffered."""

    def record(
        self,
        scope: Scope,
        info: RequestInfo,
        status: int,
        headers: list[tuple[bytes, bytes]],
        bytes_out: int,
        seconds: float,
    ) -> None: ...

    def flush(self) -> None: ...


def _nothing(*_: object) -> tuple[()]:
    """A hook of a feature that contributes nothing there."""
    return ()


def _no_services(services: Services) -> Mapping[str, object]:
    return {}


def _no_statuses() -> Mapping[type[RegistryError], int]:
    return {}


def _no_shapes() -> Mapping[str, ErrorShape]:
    return {}


def _no_paths(settings: Settings) -> frozenset[str]:
    return frozenset()


@dataclass(frozen=True)
class Feature:
    """One feature's contributions. Each hook is called once per process, when the
    server, the worker or the CLI assembles the features.

    - `services(services)`: the feature's services, built on the kernel's and those of
      the features before it, by the name of their `Services` field;
    - `routes(settings)`: Starlette routes, in the order of `FEATURES`, mounted after the
      kernel's `/v2` routes (the manifest route stays the router's first) and before the
      rest of the kernel's, so a feature may serve ACR's reserved `/acr/v1/_<word>/`
      paths (the recycle bin's), which `/acr/v1/{name:path}` would swallow; a feature
      must not serve a path of the kernel's;
    - `middleware(services)`: ASGI middleware around every request, placed inside the
      kernel's (the request log, then the network rules, so the client's address and
      the registry are known) and outside routing, in the order of `FEATURES`;
    - `collectors(services)`: Prometheus collectors `/metrics` reads at each scrape,
      after the kernel's (only with `[metrics] enabled`);
    - `recorders(services, metrics)`: what keeps something of each request
      (`RequestRecorder`), one per app; `metrics` is the process's Prometheus registry
      for its counters, None with metrics off;
    - `statuses()`: the HTTP status of each of the feature's own domain errors
      (`api/errors.py` answers the rest of their shape);
    - `error_shapes()`: the wire shape of errors no handler answered under a path
      prefix the feature serves (ARM's under the management API);
    - `public_paths(settings)`: paths no registry's network rules guard (one ending
      in `/`: every path below it);
    - `pull_policies(services)`, `push_policies(services)`: checks core asks before a
      manifest is served or stored (`core/policies.py`); one that raises refuses it;
    - `push_holds(services)`: what core asks whether a push is held from those told of
      pushes (`core/policies.py`);
    - `consumers(services)`: outbox consumers the background work drains;
    - `jobs(services)`: coroutines the background work runs until it stops;
    - `cli(app)`: adds the feature's verbs to the `dockyard` command."""

    name: str
    services: Callable[[Services], Mapping[str, object]] = _no_services
    routes: Callable[[Settings], Sequence[BaseRoute]] = _nothing
    middleware: Callable[[Services], Sequence[Middleware]] = _nothing
    collectors: Callable[[Services], Sequence[Collector]] = _nothing
    recorders: Callable[[Services, CollectorRegistry | None], Sequence[RequestRecorder]] = _nothing
    statuses: Callable[[], Mapping[type[RegistryError], int]] = _no_statuses
    error_shapes: Callable[[], Mapping[str, ErrorShape]] = _no_shapes
    public_paths: Callable[[Settings], frozenset[str]] = _no_paths
    pull_policies: Callable[[Services], Sequence[PullPolicy]] = _nothing
    push_policies: Callable[[Services], Sequence[PushPolicy]] = _nothing
    push_holds: Callable[[Services], Sequence[PushHold]] = _nothing
    consumers: Callable[[Services], Sequence[Consumer]] = _nothing
    jobs: Callable[[Services], Sequence[Awaitable[None]]] = _nothing
    cli: Callable[[typer.Typer], None] = _nothing
