"""The global endpoint's blob redirects, made good at the region. A client does not send
its `Authorization` along a redirect to another host (Go's HTTP client: not even to
another port), so the router (`router`), having checked the client's right to the
blob with a HEAD at the region, redirects to a URL that carries its own, short-lived
right: `_dockyard_route=HOST~EXPIRY~MAC`, an HMAC under a key derived from the peer
credential over the registry's host (the one the client named), the path and the
expiry. The region's middleware (`RoutedBlobs`) checks it and lets the GET in as the
client's own request would have come: with that Host, and a pull token for the
repository that it issues itself. Nothing else is let in by it: one path, GET or
HEAD, until the expiry."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.api.network import REGISTRY
from dockyard.core.registries import RegistryRecord
from dockyard.services import Services

PARAMETER = "_dockyard_route"
LIFETIME_SECONDS = 60
BLOB_PATH = re.compile(
    r"^/v2/(?P<repository>.+)/blobs/[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"
)


def route_key(peer_secret: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"dockyard: routed blob GETs"
    ).derive(peer_secret.encode())


def _mac(key: bytes, host: str, path: str, expiry: int) -> str:
    message = f"{host.lower()}\n{path}\n{expiry}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed(key: bytes, host: str, path: str, now: float | None = None) -> str:
    """The `_dockyard_route` value for a GET of `path` at `host`."""
    expiry = int((time.time() if now is None else now) + LIFETIME_SECONDS)
    return f"{host}~{expiry}~{_mac(key, host, path, expiry)}"


def checked(key: bytes, value: str, path: str, now: float | None = None) -> str | None:
    """The host a valid `value` names for `path`; None if it is forged or expired."""
    host, _, rest = value.partition("~")
    expiry_text, _, mac = rest.partition("~")
    if not expiry_text.isdigit() or int(expiry_text) < (time.time() if now is None else now):
        return None
    expected = _mac(key, host, path, int(expiry_text))
    return host if hmac.compare_digest(mac.encode(), expected.encode()) else None


class RoutedBlobs:
    """ASGI middleware: a blob GET or HEAD with a valid `_dockyard_route` goes in with
    the Host it names and a pull token for its repository (kept until shortly before it
    expires); the parameter is taken out of the query. Anything else passes untouched."""

    def __init__(
        self, app: ASGIApp, services: Services, clock: Callable[[], float] = time.time
    ) -> None:
        self.app = app
        self._services = services
        secret = services.replications.regions.secret
        self._key = route_key(secret) if secret is not None else None
        self._clock = clock
        self._tokens: dict[tuple[str, str], tuple[float, str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self._key is not None
            and scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and PARAMETER.encode() in scope.get("query_string", b"")
        ):
            scope = self._let_in(scope) or scope
        await self.app(scope, receive, send)

    def _let_in(self, scope: Scope) -> Scope | None:
        assert self._key is not None
        blob = BLOB_PATH.match(scope["path"])
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        value = next((v for k, v in query if k == PARAMETER), None)
        if blob is None or value is None:
            return None
        host = checked(self._key, value, scope["path"], self._clock())
        if host is None:
            return None
        registry = self._services.registries.for_host(host)
        rest = [(k, v) for k, v in query if k != PARAMETER]
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"host", b"authorization")]
        headers.append((b"host", host.encode("latin-1")))
        token = self._token(registry, blob["repository"])
        headers.append((b"authorization", f"Bearer {token}".encode()))
        return {
            **scope,
            "headers": headers,
            "query_string": urlencode(rest).encode(),
            "state": {**scope.get("state", {}), REGISTRY: registry},
        }

    def _token(self, registry: RegistryRecord, repository: str) -> str:
        key = (registry.login_server, repository)
        kept = self._tokens.get(key)
        if kept is not None and kept[0] > self._clock():
            return kept[1]
        access = [{"type": "repository", "name": repository, "actions": ["pull"]}]
        token, claims = self._services.tokens.access_token(
            registry.login_server, "routed-blob", access
        )
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[key] = (claims["exp"] - 60, token)
        return token
