"""Queries for the pull-through cache: each registry's cache rules and the credential
sets they log in to upstream with (`cache_rules`, `credential_sets`). What a rule may
say and which rule covers a repository are decided in `dockyard.mirroring.cache_rules`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_rules, _sets = t.cache_rules, t.credential_sets


@dataclass(frozen=True)
class CacheRuleRecord:
    name: str
    source_repository: str
    target_repository: str
    credential_set: str | None  # its name
    created_at: datetime
    created_by: str | None  # the identity that made it (None: the anonymous caller)


@dataclass(frozen=True)
class CredentialSetRecord:
    id: int
    name: str
    login_server: str
    username: str
    sealed_password: str
    created_at: datetime


_RULES = select(
    _rules.c.name,
    _rules.c.source_repository,
    _rules.c.target_repository,
    _sets.c.name,
    _rules.c.created_at,
    _rules.c.created_by,
).select_from(_rules.outerjoin(_sets, _sets.c.id == _rules.c.credential_set_id))
_SETS = select(
    _sets.c.id,
    _sets.c.name,
    _sets.c.login_server,
    _sets.c.username,
    _sets.c.password,
    _sets.c.created_at,
)


def _load_rules(conn: Connection, registry_id: int, name: str | None = None) -> list:
    query = _RULES.where(_rules.c.registry_id == registry_id)
    if name is not None:
        query = query.where(_rules.c.name == name)
    return [CacheRuleRecord(*row) for row in conn.execute(query.order_by(_rules.c.name))]


def _load_sets(conn: Connection, registry_id: int, name: str | None = None) -> list:
    query = _SETS.where(_sets.c.registry_id == registry_id)
    if name is not None:
        query = query.where(_sets.c.name == name)
    return [CredentialSetRecord(*row) for row in conn.execute(query.order_by(_sets.c.name))]


class CacheRuleStore:
    """Reads through the shared `Metadata` connection; a registry has at most a
    thousand rules, read whole (and only when a pull misses)."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def rules(self, registry_id: int, name: str | None = None) -> list[CacheRuleRecord]:
        with self._meta.connection() as conn:
            return _load_rules(conn, registry_id, name)

    def credential_sets(
        self, registry_id: int, name: str | None = None
    ) -> list[CredentialSetRecord]:
        with self._meta.connection() as conn:
            return _load_sets(conn, registry_id, name)


class CacheRuleWrites:
    """Changes inside one `Metadata.transaction()`: checks read here see the rows as
    the change will (two administrators cannot both slip past a limit)."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._conn = tx.conn

    def rules(self, registry_id: int, name: str | None = None) -> list[CacheRuleRecord]:
        return _load_rules(self._conn, registry_id, name)

    def credential_set(self, registry_id: int, name: str) -> CredentialSetRecord | None:
        found = _load_sets(self._conn, registry_id, name)
        return found[0] if found else None

    def add_rule(
        self,
        registry_id: int,
        name: str,
        source: str,
        target: str,
        credential_set_id: int | None,
        created_by: str | None,
    ) -> None:
        self._conn.execute(
            insert(_rules).values(
                registry_id=registry_id,
                name=name,
                source_repository=source,
                target_repository=target,
                credential_set_id=credential_set_id,
                created_at=self._tx.now,
                created_by=created_by,
            )
        )

    def set_rule_credential_set(
        self, registry_id: int, name: str, credential_set_id: int | None
    ) -> bool:
        result = self._conn.execute(
            update(_rules)
            .where(_rules.c.registry_id == registry_id, _rules.c.name == name)
            .values(credential_set_id=credential_set_id)
        )
        return result.rowcount > 0

    def delete_rule(self, registry_id: int, name: str) -> bool:
        result = self._conn.execute(
            delete(_rules).where(_rules.c.registry_id == registry_id, _rules.c.name == name)
        )
        return result.rowcount > 0

    def add_credential_set(
        self, registry_id: int, name: str, login_server: str, username: str, sealed: str
    ) -> None:
        self._conn.execute(
            insert(_sets).values(
                registry_id=registry_id,
                name=name,
                login_server=login_server,
                username=username,
                password=sealed,
                created_at=self._tx.now,
            )
        )

    def update_credential_set(self, set_id: int, username: str | None, sealed: str | None) -> None:
        values: dict[str, Any] = {}
        if username is not None:
            values["username"] = username
        if sealed is not None:
            values["password"] = sealed
        if values:
            self._conn.execute(update(_sets).where(_sets.c.id == set_id).values(**values))

    def rules_using(self, set_id: int) -> list[str]:
        rows = self._conn.execute(
            select(_rules.c.name)
            .where(_rules.c.credential_set_id == set_id)
            .order_by(_rules.c.name)
        )
        return list(rows.scalars())

    def delete_credential_set(self, set_id: int) -> None:
        self._conn.execute(delete(_sets).where(_sets.c.id == set_id))
