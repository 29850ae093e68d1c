"""The network rules at the door, as pure ASGI middleware (no per-request objects).

Every HTTP request's client address is resolved once (X-Forwarded-For believed only from
trusted proxies) and left in `scope["state"]` for the rest of the app: `caller_ip()`
reads it (login throttling, login events, logs). A trusted proxy's X-Forwarded-Proto
becomes the request's scheme, so URLs written for the client (the token realm, upload
locations) say https behind a proxy that terminates TLS. A request that its registry's network
rules refuse gets 403 DENIED before any routing or authentication: the az CLI reads a
403 on `/v2/` as "blocked by the firewall". Health checks are never refused, so load
balancers keep working whatever the rules say, nor are metrics, nor is the management
API (ARM is not behind a registry's firewall), nor what a client reads to log in to it
(the cloud metadata, the tenant's OpenID configuration and token endpoint, as Entra ID
is not: `management/api/cloud.py`), nor the peer endpoints of geo-replication (a
region's traffic to another is the registry's own, not a client's).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import Scope

from dockyard.api.errors import error_body
from dockyard.auth.network import client_address, forwarded_scheme, refusal
from dockyard.core.registries import Registries, RegistryRecord
from dockyard.services import Services

CLIENT_ADDRESS = "client_address"
REGISTRY = "registry"
# Health checks and metrics are the server's, not a registry's (`[metrics] token` guards
# the metrics); so are the management API's list of subscriptions and the token endpoint
# of its callers (identity tokens only, as Entra ID's is for ARM).
EXEMPT_PATHS = frozenset(
    {"/healthz", "/readyz", "/metrics", "/subscriptions", "/oauth2/v2.0/token"}
)
# The management API is ARM: no registry's firewall stands in front of it.
MANAGEMENT_PREFIX = ("/subscriptions/", "/providers/")


def scope_registry(scope: Scope, registries: Registries) -> RegistryRecord:
    """The registry the request's Host names (the default one for any other host), looked
    up once per request and kept in the scope's state: the door, the rate limits,
    authorization and the handler all need it."""
    state = scope.setdefault("state", {})
    found = state.get(REGISTRY)
    if found is None:
        host = next((value for name, value in scope["headers"] if name == b"host"), b"")
        found = state[REGISTRY] = registries.for_host(host.decode("latin-1"))
    return found


def caller_ip(connection: HTTPConnection) -> str | None:
    """The client's address as the network rules saw it (None if unknown)."""
    return connection.scope.get("state", {}).get(CLIENT_ADDRESS)


class NetworkRules:
    def __init__(  # type: ignore[no-untyped-def]
        self, app, services: Services, exempt: frozenset[str] = frozenset()
    ) -> None:
        """`exempt`: paths besides `EXEMPT_PATHS` that no registry's rules guard (the
        cloud discovery documents and the tenant's token endpoint, `management/api/cloud.py`;
        geo-replication's peer endpoints, which take only a peer's credential), one ending
        in `/` standing for every path below it."""
        self.app = app
        self._exempt = EXEMPT_PATHS | exempt
        self._exempt_below = MANAGEMENT_PREFIX + tuple(p for p in exempt if p.endswith("/"))
        self._registries = services.registries
        self._store = services.network_policies
        self._trusted = tuple(services.settings.server.trusted_proxies)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = scope.get("client")
        headers = scope["headers"]
        forwarded = (
            [value.decode("latin-1") for name, value in headers if name == b"x-forwarded-for"]
            if self._trusted
            else ()
        )
        client = client_address(peer[0] if peer else None, forwarded, self._trusted)
        scope.setdefault("state", {})[CLIENT_ADDRESS] = client
        if self._trusted:
            proto = next((v for name, v in headers if name == b"x-forwarded-proto"), b"")
            scheme = forwarded_scheme(peer[0] if peer else None, proto.decode(), self._trusted)
            if scheme is not None:
                scope["scheme"] = scheme
        path = scope["path"]
        if path not in self._exempt and not path.startswith(self._exempt_below):
            policies = self._store.policies()
            if policies:
                registry = scope_registry(scope, self._registries)
                message = refusal(policies.get(registry.id), registry.name, client)
                if message is not None:
                    await _deny(scope, send, message)
                    return
        await self.app(scope, receive, send)


async def _deny(scope, send, message: str) -> None:  # type: ignore[no-untyped-def]
    body = error_body("DENIED", message)
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
