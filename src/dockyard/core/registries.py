"""Which registry a request is for. A server hosts many; each has a login server (a host
name, optionally with port) and, in a region of a geo-replicated deployment, a regional
login server (`regional_host`); any other host is answered by the default registry."""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable

from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

_REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_LOADED = ("registries loaded",)


def regional_host(name: str, login_server: str, region: str) -> str | None:
    """The host name that reaches registry `name` in `region` only, ACR's shape
    (`NAME.REGION.geo.DOMAIN` for the login server `NAME.DOMAIN`, whatever its port):
    `myreg.azurecr.io` gives `myreg.eastus.geo.azurecr.io`, `dockyard.example.com`
    `dockyard.eastus.geo.example.com`; a one-label login server (`localhost`) gets the
    registry's name in front (`dockyard.eastus.geo.localhost`). A login server that is an
    IP address has none: no name can be derived from it."""
    host = login_server.lower()
    if host.startswith("["):
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    region = region.replace(" ", "").lower()
    first, dot, rest = host.partition(".")
    if not dot:
        return f"{name.lower()}.{region}.geo.{host}"
    return f"{first}.{region}.geo.{rest}"


class Registries:
    """Resolves hosts to registries from an in-process copy of the (small, rarely changed)
    registries table, loaded at start-up, by `reload()` after this process changes
    registries, and again when another process may have (the management API of another
    worker or node creates and deletes them): on SQLite as soon as the configuration changed,
    elsewhere when the copy is older than `REFRESH_SECONDS`."""

    REFRESH_SECONDS = 2.0

    def __init__(
        self,
        meta: Metadata,
        default_name: str,
        monotonic: Callable[[], float] = time.monotonic,
        region: str | None = None,
    ) -> None:
        """`region`: this deployment's region, whose regional login servers it answers."""
        self._meta = meta
        self._default_name = default_name
        self._region = region
        self._monotonic = monotonic
        self._loaded_at = 0.0
        self._by_host: dict[str, RegistryRecord] = {}
        self._default: RegistryRecord | None = None

    def ensure_default(self, login_server: str, sku: str = "Premium") -> RegistryRecord:
        """The default registry, created (in tier `sku`) if it does not exist yet."""
        if not _REGISTRY_NAME.fullmatch(self._default_name):
            raise ValueError(f"registry name {self._default_name!r} must be 5-50 letters or digits")
        self.reload()
        if self._default is None:
            with self._meta.transaction() as tx:
                tx.create_registry(self._default_name.lower(), login_server, sku)
            self.reload()
        assert self._default is not None
        return self._default

    def ready(self) -> None:
        """Raises unless the database answers now (`/readyz`): a fresh query, never the
        in-process copy of the registries, which outlives an outage."""
        self._meta.ping()

    def reload(self) -> None:
        records = self._meta.registries()
        by_host = {}
        if self._region is not None:
            for record in records:
                regional = regional_host(record.name, record.login_server, self._region)
                if regional is not None:
                    by_host[regional] = record
        by_host.update((r.login_server.lower(), r) for r in records)
        self._by_host = by_host
        self._default = next((r for r in records if r.name == self._default_name.lower()), None)
        self._loaded_at = self._monotonic()

    def _fresh(self) -> None:
        """On SQLite, reload once the configuration changed (its cache forgets the mark
        then); elsewhere, when the copy is older than `REFRESH_SECONDS`."""
        if not self._meta.keeps_configuration:
            # Checking the configuration would be a round trip on every request.
            if self._monotonic() - self._loaded_at > self.REFRESH_SECONDS:
                self.reload()
            return
        if not self._meta.recall(_LOADED, config=True):
            self.reload()
            self._meta.remember(_LOADED, True, config=True)

    def all(self) -> list[RegistryRecord]:
        """Every registry, read now (not the host map's copy, which may be seconds old)."""
        return self._meta.registries()

    def serving(self, host: str) -> RegistryRecord | None:
        """The registry whose login server `host` is, if this server has one (unlike
        `for_host`, no default): an image named with it is local."""
        self._fresh()
        return self._by_host.get(host.lower())

    def for_host(self, host: str) -> RegistryRecord:
        self._fresh()
        host = host.lower()
        found = self._by_host.get(host) or self._by_host.get(host.rsplit(":", 1)[0])
        if found is not None:
            return found
        assert self._default is not None, "the default registry is created at start-up"
        return self._default
