"""Changing who may log in: the admin user, identities and their secrets, role
assignments, scope maps and tokens, anonymous pull, refresh-token revocation.

Used by the `dockyard` CLI and the management API; every change is validated here, so
no caller can store a role or scope map the registry cannot apply, nor go past what the
registry's tier allows (anonymous pull, its number of tokens and scope maps: the
`AccessLimits` it is given, `tiers.usage.TierAccessLimits`, checked inside the change's
transaction)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from dockyard.auth.passwords import hash_password, new_password
from dockyard.auth.permissions import ROLES, check_repository_pattern, parse_scope_map_action
from dockyard.auth.secret_box import SecretBox
from dockyard.metadata.access import (
    AccessStore,
    AccessWrites,
    IdentityRecord,
    RoleAssignmentRecord,
    ScopeMapRecord,
    SecretRecord,
    TokenRecord,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata, Transaction

ADMIN_PASSWORD_NAMES = ("password", "password2")
TOKEN_PASSWORD_NAMES = ("password1", "password2")
IDENTITY_KINDS = ("user", "servicePrincipal")


class InvalidChange(ValueError):
    """A change that cannot be applied, with a message that says why."""


class AccessLimits(Protocol):
    """What the registry's tier allows access to add (the tiers feature's limits): each
    check runs inside the transaction that adds, and refuses by raising a
    `RegistryError` (`TierLimit`), which rolls the change back."""

    def allow_anonymous_pull(self, tx: Transaction, registry: RegistryRecord) -> None: ...

    def room_for_scope_map(self, tx: Transaction, registry: RegistryRecord) -> None: ...

    def room_for_token(self, tx: Transaction, registry: RegistryRecord) -> None: ...


@dataclass(frozen=True)
class Credentials:
    username: str
    passwords: dict[str, str]


class Administration:
    def __init__(
        self,
        meta: Metadata,
        box: SecretBox,
        clock: Callable[[], datetime],
        limits: AccessLimits,
    ) -> None:
        self._meta = meta
        self._store = AccessStore(meta)
        self._box = box
        self._clock = clock
        self._limits = limits

    # -- the admin user ----------------------------------------------------------------------

    def set_admin_user(
        self, registry: RegistryRecord, enabled: bool, password: str | None = None
    ) -> Credentials | None:
        """Turn the admin user on or off. Turning it on keeps existing passwords, sets
        `password` when given, and makes any password that is missing."""
        existing = {r.name for r in self._store.admin_passwords(registry.id)}
        with self._meta.transaction() as tx:
            writes = AccessWrites(tx)
            writes.set_registry_flags(registry.id, admin_user_enabled=enabled)
            if enabled:
                for name in ADMIN_PASSWORD_NAMES:
                    given = password if name == "password" else None
                    if given is not None or name not in existing:
                        writes.set_admin_password(
                            registry.id, name, self._box.seal(given or new_password(), registry.id)
                        )
        return self.admin_credentials(registry) if enabled else None

    def regenerate_admin_password(self, registry: RegistryRecord, name: str) -> Credentials:
        if name not in ADMIN_PASSWORD_NAMES:
            raise InvalidChange(f"password name must be one of {ADMIN_PASSWORD_NAMES}")
        with self._meta.transaction() as tx:
            AccessWrites(tx).set_admin_password(
                registry.id, name, self._box.seal(new_password(), registry.id)
            )
        return self.admin_credentials(registry)

    def admin_credentials(self, registry: RegistryRecord) -> Credentials:
        if not self._store.admin_user_enabled(registry.id):
            raise InvalidChange(f"the admin user of {registry.name} is disabled")
        passwords = {
            r.name: self._box.open(r.value, registry.id)
            for r in self._store.admin_passwords(registry.id)
        }
        return Credentials(registry.name, passwords)

    def set_anonymous_pull(self, registry: RegistryRecord, enabled: bool) -> None:
        with self._meta.transaction() as tx:
            if enabled:
                self._limits.allow_anonymous_pull(tx, registry)
            AccessWrites(tx).set_registry_flags(registry.id, anonymous_pull_enabled=enabled)

    # -- identities and roles ------------------------------------------------------------------

    def create_identity(
        self, name: str, kind: str = "servicePrincipal", expires_at: datetime | None = None
    ) -> tuple[IdentityRecord, str]:
        """A new identity and its first secret (shown once, stored hashed)."""
        if kind not in IDENTITY_KINDS:
            raise InvalidChange(f"identity kind must be one of {IDENTITY_KINDS}")
        if not name or self._store.identity(name) is not None:
            raise InvalidChange(f"an identity named {name!r} exists already")
        identity_id, secret = str(uuid.uuid4()), new_password()
        with self._meta.transaction() as tx:
            writes = AccessWrites(tx)
            writes.create_identity(identity_id, name, kind)
            writes.add_identity_secret(
                str(uuid.uuid4()), identity_id, hash_password(secret), expires_at
            )
        identity = self._store.identity(identity_id)
        assert identity is not None
        return identity, secret

    def add_identity_secret(self, key: str, expires_at: datetime | None = None) -> str:
        identity = self._identity(key)
        secret = new_password()
        with self._meta.transaction() as tx:
            AccessWrites(tx).add_identity_secret(
                str(uuid.uuid4()), identity.id, hash_password(secret), expires_at
            )
        return secret

    def set_identity_enabled(self, key: str, enabled: bool) -> None:
        identity = self._identity(key)
        with self._meta.transaction() as tx:
            AccessWrites(tx).set_identity_enabled(identity.id, enabled)

    def delete_identity(self, key: str) -> None:
        identity = self._identity(key)
        with self._meta.transaction() as tx:
            AccessWrites(tx).delete_identity(identity.id)

    def assign_role(
        self,
        registry: RegistryRecord | None,
        key: str,
        role: str,
        repository: str | None = None,
        assignment_id: str | None = None,
    ) -> str:
        """Grant `role` on a registry, some of its repositories, or (`registry` None) the
        whole server. `assignment_id`: the caller's (ARM names assignments itself)."""
        if role not in ROLES:
            raise InvalidChange(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if repository is not None:
            if registry is None:
                raise InvalidChange("a server-wide role assignment covers every repository")
            self._pattern(repository)
        identity = self._identity(key)
        assignment_id = assignment_id or str(uuid.uuid4())
        with self._meta.transaction() as tx:
            AccessWrites(tx).add_role_assignment(
                assignment_id, identity.id, registry.id if registry else None, role, repository
            )
        return assignment_id

    def remove_role_assignment(self, assignment_id: str) -> None:
        with self._meta.transaction() as tx:
            if not AccessWrites(tx).delete_role_assignment(assignment_id):
                raise InvalidChange(f"no role assignment {assignment_id}")

    def _identity(self, key: str) -> IdentityRecord:
        identity = self._store.identity(key)
        if identity is None:
            raise InvalidChange(f"no identity named or with id {key!r}")
        return identity

    # -- scope maps and tokens -----------------------------------------------------------------

    def put_scope_map(
        self,
        registry: RegistryRecord,
        name: str,
        actions: list[str],
        description: str | None = None,
    ) -> None:
        for action in actions:
            try:
                parse_scope_map_action(action)
            except ValueError as exc:
                raise InvalidChange(str(exc)) from None
        if not actions:
            raise InvalidChange("a scope map needs at least one action")
        with self._meta.transaction() as tx:
            writes = AccessWrites(tx)
            if not writes.scope_map_exists(registry.id, name):
                self._limits.room_for_scope_map(tx, registry)
            writes.put_scope_map(registry.id, name, actions, description)

    def delete_scope_map(self, registry: RegistryRecord, name: str) -> None:
        if any(t.scope_map == name for t in self._store.tokens(registry.id)):
            raise InvalidChange(f"scope map {name} is used by a token; delete the token first")
        with self._meta.transaction() as tx:
            if not AccessWrites(tx).delete_scope_map(registry.id, name):
                raise InvalidChange(f"no scope map {name}")

    def create_token(
        self,
        registry: RegistryRecord,
        name: str,
        scope_map: str,
        expires_at: datetime | None = None,
    ) -> Credentials:
        if self._store.tokens(registry.id, name):
            raise InvalidChange(f"a token named {name!r} exists already")
        if name.lower() == registry.name.lower():
            raise InvalidChange("a token cannot be named like the registry (the admin user)")
        passwords = {n: new_password() for n in TOKEN_PASSWORD_NAMES}
        with self._meta.transaction() as tx:
            self._limits.room_for_token(tx, registry)
            writes = AccessWrites(tx)
            try:
                token_id = writes.create_token(registry.id, name, scope_map)
            except KeyError:
                raise InvalidChange(f"no scope map {scope_map}") from None
            for password_name, password in passwords.items():
                writes.set_token_password(
                    token_id, password_name, hash_password(password), expires_at
                )
        return Credentials(name, passwords)

    def regenerate_token_password(
        self,
        registry: RegistryRecord,
        name: str,
        password_name: str,
        expires_at: datetime | None = None,
    ) -> str:
        if password_name not in TOKEN_PASSWORD_NAMES:
            raise InvalidChange(f"password name must be one of {TOKEN_PASSWORD_NAMES}")
        token = self._token(registry, name)
        password = new_password()
        with self._meta.transaction() as tx:
            AccessWrites(tx).set_token_password(
                token.id, password_name, hash_password(password), expires_at
            )
        return password

    def delete_token_password(
        self, registry: RegistryRecord, name: str, password_name: str
    ) -> None:
        """One of a token's passwords stops working; the other, if any, still logs in
        (`az acr token credential delete`). Its refresh tokens are kept, as when a
        password is regenerated: they are the token's, not one password's."""
        if password_name not in TOKEN_PASSWORD_NAMES:
            raise InvalidChange(f"password name must be one of {TOKEN_PASSWORD_NAMES}")
        token = self._token(registry, name)
        with self._meta.transaction() as tx:
            if not AccessWrites(tx).delete_token_password(token.id, password_name):
                raise InvalidChange(f"token {name} has no {password_name}")

    def set_token_enabled(self, registry: RegistryRecord, name: str, enabled: bool) -> None:
        token = self._token(registry, name)
        with self._meta.transaction() as tx:
            writes = AccessWrites(tx)
            writes.update_token(token.id, enabled=enabled)
            if not enabled:
                writes.revoke_refresh_tokens(registry.id, f"token:{name}")

    def set_token_scope_map(self, registry: RegistryRecord, name: str, scope_map: str) -> None:
        token = self._token(registry, name)
        maps = self._store.scope_maps(registry.id, scope_map)
        if not maps:
            raise InvalidChange(f"no scope map {scope_map}")
        with self._meta.transaction() as tx:
            AccessWrites(tx).update_token(token.id, scope_map_id=maps[0].id)

    def delete_token(self, registry: RegistryRecord, name: str) -> None:
        token = self._token(registry, name)
        with self._meta.transaction() as tx:
            writes = AccessWrites(tx)
            writes.delete_token(token.id)
            writes.revoke_refresh_tokens(registry.id, f"token:{name}")

    def _token(self, registry: RegistryRecord, name: str):  # type: ignore[no-untyped-def]
        tokens = self._store.tokens(registry.id, name)
        if not tokens:
            raise InvalidChange(f"no token named {name!r}")
        return tokens[0]

    def revoke_refresh_tokens(self, registry: RegistryRecord, subject: str | None = None) -> int:
        with self._meta.transaction() as tx:
            return AccessWrites(tx).revoke_refresh_tokens(registry.id, subject)

    # -- reads (the management API's: it builds no store of its own) --------------------

    def scope_maps(
        self,
        registry_id: int,
        name: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[ScopeMapRecord]:
        """By name; `after` and `limit` page them (keyset)."""
        return self._store.scope_maps(registry_id, name, after, limit)

    def tokens(
        self,
        registry_id: int,
        name: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[TokenRecord]:
        """By name; `after` and `limit` page them (keyset)."""
        return self._store.tokens(registry_id, name, after, limit)

    def token_passwords(self, token_id: int) -> list[SecretRecord]:
        return self._store.token_passwords(token_id)

    def identity(self, key: str) -> IdentityRecord | None:
        """By id or by name."""
        return self._store.identity(key)

    def role_assignments(self, registry_id: int | None = None) -> list[RoleAssignmentRecord]:
        """On a registry, or everywhere."""
        return self._store.role_assignments(registry_id)

    @staticmethod
    def _pattern(repository: str) -> None:
        try:
            check_repository_pattern(repository)
        except ValueError as exc:
            raise InvalidChange(str(exc)) from None
