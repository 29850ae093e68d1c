"""Another registry, seen as a client sees it: the manifests and blobs of its
repositories, fetched over its `/v2` API with the docker token-auth dance. Import and
cache rules read through here; it never stores anything (callers push what it fetches
through core, so digests are verified on the way in).

The dance: a 401 with a `Bearer` challenge sends us to its `realm` for a token per
repository scope (with Basic credentials when we have them); a `Basic` challenge takes
the credentials on every request. A host is tried over HTTPS; plain HTTP is used only for
loopback hosts (a registry on `localhost:5000`) or hosts the caller calls insecure."""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType

import httpx

from dockyard.common.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    RegistryError,
    Unavailable,
)
from dockyard.core.digests import algorithm_of, digest_bytes, is_digest, parse_digest
from dockyard.core.manifest_formats import MANIFEST_TYPES, MAX_MANIFEST_SIZE

# Every manifest type we store, so that the upstream never converts what it sends.
ACCEPT = ", ".join(sorted(MANIFEST_TYPES))
# Names whose registry API answers on another host.
_API_HOSTS = {"docker.io": "registry-1.docker.io", "index.docker.io": "registry-1.docker.io"}
_CHALLENGE_PARAMETER = re.compile(r'(\w+)="([^"]*)"')
_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
_CHUNK = 1 << 20


class UpstreamUnavailable(Unavailable):
    """The upstream registry cannot be reached, or refuses us (credentials, errors)."""

    default_message = "the upstream registry is unavailable"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class FetchedManifest:
    digest: str
    media_type: str | None  # as the upstream labelled it; the body's own type decides
    body: bytes


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or address, with or without a port) is this machine."""
    name = host[1 : host.index("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Upstream:
    """One upstream registry host; use as `async with Upstream(...) as upstream:`.
    Tokens are kept per repository scope for the client's life."""

    def __init__(
        self, host: str, credentials: Credentials | None = None, insecure: bool = False
    ) -> None:
        self.host = host
        self._api_host = _API_HOSTS.get(host.lower(), host)
        self._credentials = credentials
        self._plain_http = insecure or is_loopback(host)
        self._base: str | None = None  # decided at first contact
        self._tokens: dict[str, str] = {}
        self._basic = False
        self._client = httpx.AsyncClient(timeout=_TIMEOUT, follow_redirects=True)

    async def __aenter__(self) -> Upstream:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    # -- what callers read ---------------------------------------------------------------

    async def manifest(self, repo: str, reference: str) -> FetchedManifest:
        """The manifest's exact bytes; its digest is checked against the reference (by
        digest) or the upstream's `Docker-Content-Digest` (by tag)."""
        path = f"/v2/{repo}/manifests/{reference}"
        response = await self._send("GET", repo, path, {"Accept": ACCEPT})
        try:
            self._check(
                response,
                ManifestUnknown(
                    f"{self.host}/{repo}:{reference} was not found upstream",
                    detail={"name": repo, "reference": reference},
                ),
            )
            body = bytearray()
            async for chunk in self._chunks(response):
                body += chunk
                if len(body) > MAX_MANIFEST_SIZE:
                    raise ManifestTooLarge(f"{self.host}/{repo}:{reference} is too large")
        finally:
            await response.aclose()
        claimed = (
            reference if is_digest(reference) else response.headers.get("docker-content-digest")
        )
        digest = digest_bytes(bytes(body), algorithm_of(claimed) if claimed else "sha256")
        if claimed is not None and parse_digest(claimed) != digest:
            raise DigestInvalid(
                f"{self.host}/{repo}:{reference} sent a manifest whose digest is {digest}, "
                f"not {claimed}",
                detail={"digest": claimed},
            )
        media_type = response.headers.get("content-type", "").split(";")[0].strip() or None
        return FetchedManifest(digest, media_type, bytes(body))

    @asynccontextmanager
    async def blob(self, repo: str, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """The blob's bytes as they arrive (never whole in memory); the caller verifies
        the digest while storing them."""
        response = await self._send("GET", repo, f"/v2/{repo}/blobs/{digest}", {})
        try:
            self._check(
                response,
                BlobUnknown(f"{self.host}/{repo}@{digest} was not found upstream"),
            )
            yield self._chunks(response)
        finally:
            await response.aclose()

    # -- the protocol --------------------------------------------------------------------

    async def _send(
        self, method: str, repo: str, path: str, headers: dict[str, str]
    ) -> httpx.Response:
        """A streamed request, authenticated as the upstream's 401 asks (once)."""
        scope = f"repository:{repo}:pull"
        base = await self._base_url()
        for attempt in range(2):
            request = self._client.build_request(
                method, base + path, headers={**headers, **self._authorization(scope)}
            )
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TransportError as exc:
                raise self._unreachable(exc) from None
            if response.status_code != 401 or attempt == 1:
                return response
            challenge = response.headers.get("www-authenticate", "")
            await response.aclose()
            await self._authenticate(challenge, scope)
        raise AssertionError("the loop returns")

    async def _base_url(self) -> str:
        """https://host, or http://host when TLS cannot be spoken with a host that may
        be reached over plain HTTP."""
        if self._base is None:
            try:
                await self._client.get(f"https://{self._api_host}/v2/")
                self._base = f"https://{self._api_host}"
            except httpx.TransportError as exc:
                if not self._plain_http:
                    raise self._unreachable(exc) from None
                self._base = f"http://{self._api_host}"
        return self._base

    def _authorization(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token is not None:
            return {"Authorization": f"Bearer {token}"}
        if self._basic and self._credentials is not None:
            pair = f"{self._credentials.username}:{self._credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}

    async def _authenticate(self, challenge: str, scope: str) -> None:
        kind, _, parameters = challenge.partition(" ")
        if kind.lower() == "basic":
            if self._credentials is None:
                raise UpstreamUnavailable(f"{self.host} refused an anonymous pull: log in")
            self._basic = True
            return
        fields = dict(_CHALLENGE_PARAMETER.findall(parameters))
        if kind.lower() != "bearer" or "realm" not in fields:
            raise UpstreamUnavailable(f"{self.host} asks for an unknown login: {challenge!r}")
        query = {"scope": scope}
        if "service" in fields:
            query["service"] = fields["service"]
        auth = (
            None
            if self._credentials is None
            else httpx.BasicAuth(self._credentials.username, self._credentials.password)
        )
        try:
            response = await self._client.get(fields["realm"], params=query, auth=auth)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code in (401, 403):
            who = "the credentials" if self._credentials else "an anonymous pull"
            raise UpstreamUnavailable(f"{self.host} refused {who} for {scope}")
        if response.status_code != 200:
            raise UpstreamUnavailable(
                f"the token service of {self.host} answered {response.status_code}"
            )
        try:
            answer = response.json()
            self._tokens[scope] = answer.get("token") or answer["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise UpstreamUnavailable(f"the token service of {self.host} sent no token") from None

    def _check(self, response: httpx.Response, not_found: RegistryError) -> None:
        status = response.status_code
        if status == 200:
            return
        if status == 404:
            raise not_found
        if status in (401, 403):
            who = "the credentials" if self._credentials else "an anonymous pull"
            raise UpstreamUnavailable(
                f"{self.host} refused {who} ({status}) for {response.request.url.path}"
            )
        raise UpstreamUnavailable(f"{self.host} answered {status} for {response.request.url.path}")

    async def _chunks(self, response: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in response.aiter_bytes(_CHUNK):
                yield chunk
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: httpx.TransportError) -> UpstreamUnavailable:
        return UpstreamUnavailable(f"{self.host} is unreachable: {exc or type(exc).__name__}")
