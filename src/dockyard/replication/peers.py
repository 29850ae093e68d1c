"""How regions trust each other: every region of a deployment shares one peer
credential (`[region] peer_secret`), sent as a bearer token with the sender's region
name; a region accepts a call only from a peer it knows, with that credential. The
credential goes in headers only, never in a log line or an error message."""

from __future__ import annotations

import hmac

import httpx

from dockyard.replication.regions import Peer, Regions

PREFIX = "/_dockyard/replication/v1"
REGION_HEADER = "X-Dockyard-Region"
TIMEOUT_SECONDS = 10.0


class PeerUnreachable(Exception):
    """A peer did not answer, or refused; the message says why, without the credential."""


def accepts(regions: Regions, region: str | None, authorization: str | None) -> bool:
    """Whether a call naming `region` with `authorization` comes from a known peer."""
    if regions.secret is None or region is None or regions.peer(region) is None:
        return False
    kind, _, token = (authorization or "").partition(" ")
    return kind.lower() == "bearer" and hmac.compare_digest(token.encode(), regions.secret.encode())


class PeerClient:
    """Calls to one peer as this region (an `httpx.AsyncClient` per call site's life)."""

    def __init__(self, regions: Regions, peer: Peer) -> None:
        self.peer = peer
        self._regions = regions

    def headers(self) -> dict[str, str]:
        if self._regions.secret is None:
            raise PeerUnreachable("no [region] peer_secret is set: peers cannot be reached")
        return {
            "Authorization": f"Bearer {self._regions.secret}",
            REGION_HEADER: self._regions.home,
        }

    @property
    def base_url(self) -> str:
        return self.peer.url + PREFIX

    @property
    def timeout(self) -> float:
        return TIMEOUT_SECONDS

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers=self.headers(), timeout=self.timeout
        )

    async def ping(self) -> None:
        """Ask the peer whether it knows this region and accepts the credential."""
        try:
            async with self.client() as http:
                answer = await http.get("/ping")
        except httpx.HTTPError as exc:
            raise PeerUnreachable(
                f"region {self.peer.name} at {self.peer.url} did not answer: {type(exc).__name__}"
            ) from None
        if answer.status_code in (401, 403):
            raise PeerUnreachable(
                f"region {self.peer.name} refused this region's peer credential: check that "
                f"both share [region] peer_secret and list each other in [region] peers"
            )
        if answer.status_code != 200:
            raise PeerUnreachable(
                f"region {self.peer.name} answered the ping with HTTP {answer.status_code}"
            )
