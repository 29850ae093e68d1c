"""Queries for identity and access: admin passwords, identities and their secrets, role
assignments, scope maps, tokens and their passwords, refresh tokens, signing keys.

Values go in and out plain; hashing, encryption and rules live in `dockyard.auth`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction


@dataclass(frozen=True)
class SecretRecord:
    name: str  # password name (admin, token) or secret id (identity)
    value: str  # an argon2 hash, or an encrypted secret (admin passwords)
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class IdentityRecord:
    id: str
    name: str
    kind: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class RoleAssignmentRecord:
    id: str
    identity_id: str
    registry_id: int | None  # None: the whole server
    role: str
    repository: str | None
    created_at: datetime


@dataclass(frozen=True)
class ScopeMapRecord:
    id: int
    registry_id: int
    name: str
    description: str | None
    kind: str
    actions: list[str]
    created_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    id: int
    registry_id: int
    name: str
    scope_map: str
    enabled: bool
    created_at: datetime


@dataclass(frozen=True)
class RefreshTokenRecord:
    jti: str
    registry_id: int
    subject: str
    expires_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class SigningKeyRecord:
    kid: str
    algorithm: str
    private_key: str
    created_at: datetime
    retired_at: datetime | None


_i, _s, _ra = t.identities, t.identity_secrets, t.role_assignments
_sm, _tk, _tp = t.scope_maps, t.tokens, t.token_passwords


class AccessStore:
    """Reads through the shared `Metadata` connection; writes are `AccessWrites` on a
    `Metadata.transaction()`, so access changes commit with anything else in it."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def _all(self, statement) -> list:  # type: ignore[no-untyped-def]
        with self._meta.connection() as conn:
            return list(conn.execute(statement))

    # -- registry settings ---------------------------------------------------------------

    def _flag(self, column, registry_id: int) -> bool:  # type: ignore[no-untyped-def]
        """A registry switch, from the read cache: checked on every anonymous request."""

        def load(conn) -> bool:  # type: ignore[no-untyped-def]
            row = conn.execute(select(column).where(t.registries.c.id == registry_id)).first()
            return bool(row and row[0])

        return self._meta.cached(("flag", column.name, registry_id), load, config=True)

    def admin_user_enabled(self, registry_id: int) -> bool:
        return self._flag(t.registries.c.admin_user_enabled, registry_id)

    def anonymous_pull_enabled(self, registry_id: int) -> bool:
        return self._flag(t.registries.c.anonymous_pull_enabled, registry_id)

    def admin_passwords(self, registry_id: int) -> list[SecretRecord]:
        a = t.admin_passwords
        rows = self._all(
            select(a.c.name, a.c.secret, a.c.created_at)
            .where(a.c.registry_id == registry_id)
            .order_by(a.c.name)
        )
        return [SecretRecord(name, secret, None, created) for name, secret, created in rows]

    # -- identities and roles ------------------------------------------------------------

    def identity(self, key: str) -> IdentityRecord | None:
        """By id or by name."""
        rows = self._all(
            select(_i.c.id, _i.c.name, _i.c.kind, _i.c.enabled, _i.c.created_at).where(
                (_i.c.id == key) | (_i.c.name == key)
            )
        )
        return IdentityRecord(*rows[0]) if rows else None

    def identities(self) -> list[IdentityRecord]:
        rows = self._all(
            select(_i.c.id, _i.c.name, _i.c.kind, _i.c.enabled, _i.c.created_at).order_by(_i.c.name)
        )
        return [IdentityRecord(*row) for row in rows]

    def identity_secrets(self, identity_id: str) -> list[SecretRecord]:
        rows = self._all(
            select(_s.c.id, _s.c.hash, _s.c.expires_at, _s.c.created_at).where(
                _s.c.identity_id == identity_id
            )
        )
        return [SecretRecord(*row) for row in rows]

    def role_assignments(
        self,
        registry_id: int | None = None,
        identity_id: str | None = None,
        *,
        server_wide: bool = False,
    ) -> list[RoleAssignmentRecord]:
        """Assignments on a registry (with `server_wide`, those on the whole server too),
        or everywhere; of one identity or of all."""
        query = select(
            _ra.c.id,
            _ra.c.identity_id,
            _ra.c.registry_id,
            _ra.c.role,
            _ra.c.repository,
            _ra.c.created_at,
        ).order_by(_ra.c.created_at, _ra.c.id)
        if registry_id is not None:
            on_registry = _ra.c.registry_id == registry_id
            query = query.where(
                on_registry | _ra.c.registry_id.is_(None) if server_wide else on_registry
            )
        if identity_id is not None:
            query = query.where(_ra.c.identity_id == identity_id)
        return [RoleAssignmentRecord(*row) for row in self._all(query)]

    # -- scope maps and tokens -----------------------------------------------------------

    def scope_maps(
        self,
        registry_id: int,
        name: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[ScopeMapRecord]:
        """By name; `after` and `limit` page them (keyset)."""
        query = (
            select(
                _sm.c.id,
                _sm.c.registry_id,
                _sm.c.name,
                _sm.c.description,
                _sm.c.kind,
                _sm.c.actions,
                _sm.c.created_at,
            )
            .where(_sm.c.registry_id == registry_id)
            .order_by(_sm.c.name)
        )
        if name is not None:
            query = query.where(_sm.c.name == name)
        if after is not None:
            query = query.where(_sm.c.name > after)
        return [
            ScopeMapRecord(i, r, n, d, k, orjson.loads(a), c)
            for i, r, n, d, k, a, c in self._all(query.limit(limit))
        ]

    def tokens(
        self,
        registry_id: int,
        name: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[TokenRecord]:
        """By name; `after` and `limit` page them (keyset)."""
        query = (
            select(
                _tk.c.id, _tk.c.registry_id, _tk.c.name, _sm.c.name, _tk.c.enabled, _tk.c.created_at
            )
            .select_from(_tk.join(_sm, _sm.c.id == _tk.c.scope_map_id))
            .where(_tk.c.registry_id == registry_id)
            .order_by(_tk.c.name)
        )
        if name is not None:
            query = query.where(_tk.c.name == name)
        if after is not None:
            query = query.where(_tk.c.name > after)
        return [TokenRecord(*row) for row in self._all(query.limit(limit))]

    def token_passwords(self, token_id: int) -> list[SecretRecord]:
        rows = self._all(
            select(_tp.c.name, _tp.c.hash, _tp.c.expires_at, _tp.c.created_at)
            .where(_tp.c.token_id == token_id)
            .order_by(_tp.c.name)
        )
        return [SecretRecord(*row) for row in rows]

    # -- refresh tokens and keys -----------------------------------------------------------

    def refresh_token(self, jti: str) -> RefreshTokenRecord | None:
        r = t.refresh_tokens
        rows = self._all(
            select(r.c.jti, r.c.registry_id, r.c.subject, r.c.expires_at, r.c.revoked_at).where(
                r.c.jti == jti
            )
        )
        return RefreshTokenRecord(*rows[0]) if rows else None

    def signing_keys(self) -> list[SigningKeyRecord]:
        k = t.signing_keys
        rows = self._all(
            select(
                k.c.kid, k.c.algorithm, k.c.private_key, k.c.created_at, k.c.retired_at
            ).order_by(k.c.created_at)
        )
        return [SigningKeyRecord(*row) for row in rows]


class AccessWrites:
    """Access changes inside one `Metadata.transaction()`."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx
        self._conn = tx.conn
        self.now = tx.now

    def set_registry_flags(self, registry_id: int, **flags: bool | str) -> None:
        self._conn.execute(
            update(t.registries).where(t.registries.c.id == registry_id).values(**flags)
        )

    def set_admin_password(self, registry_id: int, name: str, secret: str) -> None:
        a = t.admin_passwords
        self._conn.execute(delete(a).where(a.c.registry_id == registry_id, a.c.name == name))
        self._conn.execute(
            insert(a).values(registry_id=registry_id, name=name, secret=secret, created_at=self.now)
        )

    def create_identity(self, identity_id: str, name: str, kind: str) -> None:
        self._conn.execute(
            insert(_i).values(
                id=identity_id, name=name, kind=kind, enabled=True, created_at=self.now
            )
        )

    def set_identity_enabled(self, identity_id: str, enabled: bool) -> bool:
        result = self._conn.execute(
            update(_i).where(_i.c.id == identity_id).values(enabled=enabled)
        )
        return result.rowcount > 0

    def delete_identity(self, identity_id: str) -> bool:
        return self._conn.execute(delete(_i).where(_i.c.id == identity_id)).rowcount > 0

    def add_identity_secret(
        self, secret_id: str, identity_id: str, hashed: str, expires_at: datetime | None
    ) -> None:
        self._conn.execute(
            insert(_s).values(
                id=secret_id,
                identity_id=identity_id,
                hash=hashed,
                expires_at=expires_at,
                created_at=self.now,
            )
        )

    def add_role_assignment(
        self,
        assignment_id: str,
        identity_id: str,
        registry_id: int | None,
        role: str,
        repository: str | None,
    ) -> None:
        self._conn.execute(
            insert(_ra).values(
                id=assignment_id,
                identity_id=identity_id,
                registry_id=registry_id,
                role=role,
                repository=repository,
                created_at=self.now,
            )
        )

    def delete_role_assignment(self, assignment_id: str) -> bool:
        return self._conn.execute(delete(_ra).where(_ra.c.id == assignment_id)).rowcount > 0

    def _scope_map_id(self, registry_id: int, name: str) -> int | None:
        return self._conn.execute(
            select(_sm.c.id).where(_sm.c.registry_id == registry_id, _sm.c.name == name)
        ).scalar()

    def scope_map_exists(self, registry_id: int, name: str) -> bool:
        return self._scope_map_id(registry_id, name) is not None

    def put_scope_map(
        self,
        registry_id: int,
        name: str,
        actions: list[str],
        description: str | None,
        kind: str = "UserDefined",
    ) -> None:
        existing = self._scope_map_id(registry_id, name)
        values = {"actions": orjson.dumps(actions).decode(), "description": description}
        if existing is None:
            self._conn.execute(
                insert(_sm).values(
                    registry_id=registry_id, name=name, kind=kind, created_at=self.now, **values
                )
            )
        else:
            self._conn.execute(update(_sm).where(_sm.c.id == existing).values(**values))

    def delete_scope_map(self, registry_id: int, name: str) -> bool:
        result = self._conn.execute(
            delete(_sm).where(_sm.c.registry_id == registry_id, _sm.c.name == name)
        )
        return result.rowcount > 0

    def create_token(self, registry_id: int, name: str, scope_map: str) -> int:
        scope_map_id = self._scope_map_id(registry_id, scope_map)
        if scope_map_id is None:
            raise KeyError(scope_map)
        result = self._conn.execute(
            insert(_tk).values(
                registry_id=registry_id,
                name=name,
                scope_map_id=scope_map_id,
                enabled=True,
                created_at=self.now,
            )
        )
        return result.inserted_primary_key[0]

    def update_token(
        self, token_id: int, enabled: bool | None = None, scope_map_id: int | None = None
    ) -> None:
        values: dict = {}
        if enabled is not None:
            values["enabled"] = enabled
        if scope_map_id is not None:
            values["scope_map_id"] = scope_map_id
        if values:
            self._conn.execute(update(_tk).where(_tk.c.id == token_id).values(**values))

    def delete_token(self, token_id: int) -> None:
        self._conn.execute(delete(_tk).where(_tk.c.id == token_id))

    def set_token_password(
        self, token_id: int, name: str, hashed: str, expires_at: datetime | None
    ) -> None:
        self._conn.execute(delete(_tp).where(_tp.c.token_id == token_id, _tp.c.name == name))
        self._conn.execute(
            insert(_tp).values(
                token_id=token_id,
                name=name,
                hash=hashed,
                expires_at=expires_at,
                created_at=self.now,
            )
        )

    def delete_token_password(self, token_id: int, name: str) -> bool:
        result = self._conn.execute(
            delete(_tp).where(_tp.c.token_id == token_id, _tp.c.name == name)
        )
        return result.rowcount > 0

    def add_refresh_token(
        self, jti: str, registry_id: int, subject: str, expires_at: datetime
    ) -> None:
        self._conn.execute(
            insert(t.refresh_tokens).values(
                jti=jti,
                registry_id=registry_id,
                subject=subject,
                expires_at=expires_at,
                created_at=self.now,
            )
        )

    def revoke_refresh_tokens(self, registry_id: int, subject: str | None = None) -> int:
        r = t.refresh_tokens
        query = update(r).where(r.c.registry_id == registry_id, r.c.revoked_at.is_(None))
        if subject is not None:
            query = query.where(r.c.subject == subject)
        return self._conn.execute(query.values(revoked_at=self.now)).rowcount

    def add_signing_key(self, kid: str, algorithm: str, private_key: str) -> None:
        self._conn.execute(
            insert(t.signing_keys).values(
                kid=kid, algorithm=algorithm, private_key=private_key, created_at=self.now
            )
        )

    def retire_signing_keys(self, keep: str) -> None:
        k = t.signing_keys
        self._conn.execute(
            update(k).where(k.c.kid != keep, k.c.retired_at.is_(None)).values(retired_at=self.now)
        )
