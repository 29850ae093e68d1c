"""This deployment's region and the peers it knows, from `[region]`: the only regions
a registry's replication may be placed in."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.settings import Settings


def region_key(location: str) -> str:
    """How a location compares: ARM's spellings `West US`, `westus` and `WestUS` are one."""
    return location.replace(" ", "").lower()


@dataclass(frozen=True)
class Peer:
    name: str
    url: str  # base URL, no trailing slash


@dataclass(frozen=True)
class Regions:
    home: str
    peers: tuple[Peer, ...]
    secret: str | None  # the shared peer credential; None: peers are refused both ways

    @classmethod
    def from_settings(cls, settings: Settings) -> Regions:
        region = settings.region
        secret = region.peer_secret.get_secret_value() if region.peer_secret else None
        peers = tuple(Peer(p.name, p.url.rstrip("/")) for p in region.peers)
        return cls(settings.region_name, peers, secret or None)

    def peer(self, location: str) -> Peer | None:
        """The peer in `location`, in any of ARM's spellings; None if none is known."""
        wanted = region_key(location)
        return next((p for p in self.peers if region_key(p.name) == wanted), None)

    def is_home(self, location: str) -> bool:
        return region_key(location) == region_key(self.home)
