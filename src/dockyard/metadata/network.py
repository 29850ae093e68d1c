"""Queries for network rules: each registry's public network access, default action and
IP rules (`registries.public_network_access`, `registries.network_default_action`,
`network_rules`).

The policy is read on every request, so `NetworkStore.policies()` is cached: on SQLite
until the database changes (the `Metadata` read cache), elsewhere for a few seconds. Only
registries that restrict anything are loaded, so with no rules the cache holds an empty
mapping and a request costs one dictionary lookup. Rule evaluation and the canonical
form of a rule live in `dockyard.auth.network`."""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, false, func, or_, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_reg, _rules = t.registries, t.network_rules
_ALLOW = "Allow"

_RESTRICTED = select(_reg.c.id, _reg.c.public_network_access, _reg.c.network_default_action).where(
    or_(_reg.c.public_network_access == false(), _reg.c.network_default_action != _ALLOW)
)
_ALLOW_RULES = select(_rules.c.registry_id, _rules.c.cidr).where(_rules.c.action == _ALLOW)
_CACHE_KEY = ("network_policies",)
# Databases without SQLite's cheap change counter: how stale a node's copy may get.
POLICY_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class NetworkPolicy:
    """What a registry restricts, with its rules already parsed (it is cached, and read
    on every request)."""

    public_network_access: bool
    default_action: str  # Allow or Deny
    allowed: tuple[Network, ...] = ()


@dataclass(frozen=True)
class RegistryNetworkRecord:
    id: int
    name: str
    public_network_access: bool
    default_action: str


@dataclass(frozen=True)
class NetworkRuleRecord:
    rule: str  # canonical: a bare address or a CIDR block
    action: str
    created_at: datetime


class TooManyRules(ValueError):
    pass


def _load_policies(conn: Connection) -> dict[int, NetworkPolicy]:
    restricted = conn.execute(_RESTRICTED).all()
    if not restricted:
        return {}
    allowed: dict[int, list[Network]] = {}
    for registry_id, cidr in conn.execute(_ALLOW_RULES):
        allowed.setdefault(registry_id, []).append(ipaddress.ip_network(cidr))
    return {
        registry_id: NetworkPolicy(bool(public), action, tuple(allowed.get(registry_id, ())))
        for registry_id, public, action in restricted
    }


class NetworkStore:
    """Reads through the shared `Metadata` connection; writes are `NetworkWrites` on a
    `Metadata.transaction()`."""

    def __init__(self, meta: Metadata, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._meta = meta
        self._policies = meta.kept_read(_CACHE_KEY, _load_policies, POLICY_TTL_SECONDS, monotonic)

    def policies(self) -> dict[int, NetworkPolicy]:
        """The policy of every registry that restricts access; the others admit everyone."""
        return self._policies()

    def registry(self, name: str) -> RegistryNetworkRecord | None:
        with self._meta.connection() as conn:
            row = conn.execute(
                select(
                    _reg.c.id,
                    _reg.c.name,
                    _reg.c.public_network_access,
                    _reg.c.network_default_action,
                ).where(_reg.c.name == name.lower())
            ).first()
        if row is None:
            return None
        return RegistryNetworkRecord(row[0], row[1], bool(row[2]), row[3])

    def rules(self, registry_id: int) -> list[NetworkRuleRecord]:
        with self._meta.connection() as conn:
            rows = conn.execute(
                select(_rules.c.cidr, _rules.c.action, _rules.c.created_at)
                .where(_rules.c.registry_id == registry_id)
                .order_by(_rules.c.cidr)
            )
            return [NetworkRuleRecord(*row) for row in rows]


class NetworkWrites:
    """Network changes inside one `Metadata.transaction()`."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._conn = tx.conn

    def set_access(
        self,
        registry_id: int,
        public_network_access: bool | None = None,
        default_action: str | None = None,
    ) -> None:
        values: dict[str, object] = {}
        if public_network_access is not None:
            values["public_network_access"] = public_network_access
        if default_action is not None:
            values["network_default_action"] = default_action
        if values:
            self._conn.execute(update(_reg).where(_reg.c.id == registry_id).values(**values))

    def add_rule(self, registry_id: int, cidr: str, limit: int) -> bool:
        """Allow `cidr` (in canonical form); False if that rule exists. Raises
        `TooManyRules` past `limit` (counted in the transaction, so two administrators
        cannot both slip past it)."""
        exists = self._conn.execute(
            select(_rules.c.cidr).where(_rules.c.registry_id == registry_id, _rules.c.cidr == cidr)
        ).first()
        if exists is not None:
            return False
        count = self._conn.execute(
            select(func.count()).where(_rules.c.registry_id == registry_id)
        ).scalar_one()
        if count >= limit:
            raise TooManyRules(f"a registry has at most {limit} network rules")
        self._conn.execute(
            _rules.insert().values(
                registry_id=registry_id, cidr=cidr, action=_ALLOW, created_at=self._tx.now
            )
        )
        return True

    def remove_rule(self, registry_id: int, cidr: str) -> bool:
        result = self._conn.execute(
            delete(_rules).where(_rules.c.registry_id == registry_id, _rules.c.cidr == cidr)
        )
        return result.rowcount > 0
