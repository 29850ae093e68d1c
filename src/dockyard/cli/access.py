"""`dockyard` commands for identity and access, modelled on `az acr` and `az role`:
the admin user (`credential`, `admin-user`), anonymous pull, identities, role
assignments, scope maps, tokens, refresh-token revocation and signing-key rotation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import (
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    fail,
    local_services,
    registry_named,
)
from dockyard.cli.login import login
from dockyard.core.errors import TierLimit

if TYPE_CHECKING:
    from dockyard.services import Services

credential = typer.Typer(no_args_is_help=True, help="The admin user's credentials.")
admin_user = typer.Typer(no_args_is_help=True, help="Turn the admin user on or off.")
anonymous_pull = typer.Typer(no_args_is_help=True, help="Turn anonymous pull on or off.")
identity = typer.Typer(no_args_is_help=True, help="Users and service principals.")
role = typer.Typer(no_args_is_help=True, help="Role assignments (AcrPull, AcrPush, ...).")
scope_map = typer.Typer(no_args_is_help=True, help="Scope maps for repository tokens.")
token = typer.Typer(no_args_is_help=True, help="Repository-scoped tokens.")
keys = typer.Typer(no_args_is_help=True, help="Token-signing keys.")
refresh_token = typer.Typer(no_args_is_help=True, help="Refresh tokens.")

ExpiryOption = Annotated[
    datetime | None, typer.Option("--expiration", help="When the secret stops working (UTC).")
]


def _run(config: Any, data_dir: Any, database_url: Any, action: Callable[[Services], None]) -> None:
    from dockyard.auth.administration import InvalidChange

    with local_services(config, data_dir, database_url) as services:
        try:
            action(services)
        except InvalidChange as exc:
            fail(str(exc))
        except TierLimit as exc:
            fail(exc.message)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None or moment.tzinfo else moment.replace(tzinfo=UTC)


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def _secrets(title: str, username: str, passwords: dict[str, str], once: bool = True) -> None:
    """Print credentials; `once` when only their hashes are kept (identities, tokens), unlike
    the admin user's passwords, which are kept encrypted so that they can be shown again."""
    note = " (shown once: store them now)" if once else ""
    console.print(f"[bold]{title}[/bold]{note}")
    console.print(f"username: {username}")
    for name, value in passwords.items():
        console.print(f"{name}: {value}")


# -- admin user ------------------------------------------------------------------------------


@credential.command("show")
def credential_show(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show the admin user's name and passwords."""

    def act(s: Services) -> None:
        creds = s.administration.admin_credentials(registry_named(s, registry))
        _secrets("admin user", creds.username, creds.passwords, once=False)

    _run(config, data_dir, database_url, act)


@credential.command("renew")
def credential_renew(
    password_name: Annotated[str, typer.Option(help="password or password2")],
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Regenerate one of the admin user's passwords."""

    def act(s: Services) -> None:
        creds = s.administration.regenerate_admin_password(
            registry_named(s, registry), password_name
        )
        _secrets(
            "admin user",
            creds.username,
            {password_name: creds.passwords[password_name]},
            once=False,
        )

    _run(config, data_dir, database_url, act)


def _switch(app: typer.Typer, what: str, apply: Callable[[Services, Any, bool], None]) -> None:
    for verb, enabled in (("enable", True), ("disable", False)):

        def command(
            registry: RegistryOption = None,
            config: ConfigOption = None,
            data_dir: DataDirOption = None,
            database_url: DatabaseOption = None,
            enabled: bool = enabled,
        ) -> None:
            _run(
                config,
                data_dir,
                database_url,
                lambda s: apply(s, registry_named(s, registry), enabled),
            )
            console.print(f"{what} {'enabled' if enabled else 'disabled'}")

        command.__doc__ = f"{verb.capitalize()} the {what}."
        app.command(verb)(command)


_switch(
    admin_user, "admin user", lambda s, reg, on: s.administration.set_admin_user(reg, on) and None
)
_switch(
    anonymous_pull,
    "anonymous pull",
    lambda s, reg, on: s.administration.set_anonymous_pull(reg, on),
)


# -- identities and roles ----------------------------------------------------------------------


@identity.command("create")
def identity_create(
    name: str,
    kind: Annotated[str, typer.Option(help="user or servicePrincipal")] = "servicePrincipal",
    expiration: ExpiryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an identity and its first secret (client id = the identity's id)."""

    def act(s: Services) -> None:
        record, secret = s.administration.create_identity(name, kind, _utc(expiration))
        _secrets(f"identity {record.name}", record.id, {"secret": secret})

    _run(config, data_dir, database_url, act)


@identity.command("list")
def identity_list(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List identities."""
    from dockyard.metadata.access import AccessStore

    def act(s: Services) -> None:
        rows = [
            [i.name, i.id, i.kind, i.enabled, i.created_at]
            for i in AccessStore(s.meta).identities()
        ]
        _table("identities", ["name", "id", "kind", "enabled", "created"], rows)

    _run(config, data_dir, database_url, act)


@identity.command("add-secret")
def identity_add_secret(
    name: str,
    expiration: ExpiryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add a secret to an identity (the old ones keep working)."""

    def act(s: Services) -> None:
        secret = s.administration.add_identity_secret(name, _utc(expiration))
        _secrets(f"identity {name}", name, {"secret": secret})

    _run(config, data_dir, database_url, act)


@identity.command("disable")
def identity_disable(
    name: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Disable an identity: its logins and tokens stop working."""
    _run(
        config, data_dir, database_url, lambda s: s.administration.set_identity_enabled(name, False)
    )


@identity.command("enable")
def identity_enable(
    name: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Enable an identity again."""
    _run(
        config, data_dir, database_url, lambda s: s.administration.set_identity_enabled(name, True)
    )


@identity.command("delete")
def identity_delete(
    name: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete an identity and its role assignments."""
    _run(config, data_dir, database_url, lambda s: s.administration.delete_identity(name))


@role.command("create")
def role_create(
    assignee: Annotated[str, typer.Option(help="Identity name or id.")],
    role_name: Annotated[str, typer.Option("--role", help="AcrPull, AcrPush, AcrDelete, ...")],
    repository: Annotated[
        str | None, typer.Option(help="Limit to a repository (NAME, PREFIX/* or *).")
    ] = None,
    server_wide: Annotated[
        bool,
        typer.Option(
            help="On every registry of the server; Owner or Contributor here may also "
            "create registries through the management API."
        ),
    ] = False,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Assign a role to an identity on a registry (or some of its repositories), or on
    the whole server."""

    def act(s: Services) -> None:
        assignment = s.administration.assign_role(
            None if server_wide else registry_named(s, registry), assignee, role_name, repository
        )
        console.print(f"role assignment {assignment}")

    _run(config, data_dir, database_url, act)


@role.command("list")
def role_list(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List role assignments."""
    from dockyard.metadata.access import AccessStore

    def act(s: Services) -> None:
        store = AccessStore(s.meta)
        names = {i.id: i.name for i in store.identities()}
        rows = [
            [
                a.id,
                names.get(a.identity_id, a.identity_id),
                a.role,
                "(server-wide)" if a.registry_id is None else a.repository or "*",
            ]
            for a in store.role_assignments(registry_named(s, registry).id, server_wide=True)
        ]
        _table("role assignments", ["id", "assignee", "role", "repositories"], rows)

    _run(config, data_dir, database_url, act)


@role.command("delete")
def role_delete(
    assignment_id: str,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Remove a role assignment."""
    _run(
        config,
        data_dir,
        database_url,
        lambda s: s.administration.remove_role_assignment(assignment_id),
    )


# -- scope maps and tokens ----------------------------------------------------------------------


@scope_map.command("create")
def scope_map_create(
    name: str,
    repository: Annotated[
        list[str],
        typer.Option(help="REPO ACTION[,ACTION]: e.g. --repository 'samples/* content/read'"),
    ],
    description: Annotated[str | None, typer.Option()] = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create or replace a scope map (actions: content/read, content/write,
    content/delete, metadata/read, metadata/write)."""
    actions = []
    for entry in repository:
        repo, _, words = entry.partition(" ")
        for word in words.replace(",", " ").split():
            actions.append(f"repositories/{repo}/{word}")
    _run(
        config,
        data_dir,
        database_url,
        lambda s: s.administration.put_scope_map(
            registry_named(s, registry), name, actions, description
        ),
    )


@scope_map.command("list")
def scope_map_list(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List scope maps."""
    from dockyard.metadata.access import AccessStore

    def act(s: Services) -> None:
        rows = [
            [m.name, m.kind, "\n".join(m.actions), m.description]
            for m in AccessStore(s.meta).scope_maps(registry_named(s, registry).id)
        ]
        _table("scope maps", ["name", "type", "actions", "description"], rows)

    _run(config, data_dir, database_url, act)


@scope_map.command("delete")
def scope_map_delete(
    name: str,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete a scope map no token uses."""
    _run(
        config,
        data_dir,
        database_url,
        lambda s: s.administration.delete_scope_map(registry_named(s, registry), name),
    )


@token.command("create")
def token_create(
    name: str,
    scope_map_name: Annotated[str, typer.Option("--scope-map")],
    expiration: ExpiryOption = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a token bound to a scope map, with two passwords."""

    def act(s: Services) -> None:
        creds = s.administration.create_token(
            registry_named(s, registry), name, scope_map_name, _utc(expiration)
        )
        _secrets(f"token {name}", creds.username, creds.passwords)

    _run(config, data_dir, database_url, act)


@token.command("list")
def token_list(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List tokens."""
    from dockyard.metadata.access import AccessStore

    def act(s: Services) -> None:
        rows = [
            [t.name, t.scope_map, "enabled" if t.enabled else "disabled", t.created_at]
            for t in AccessStore(s.meta).tokens(registry_named(s, registry).id)
        ]
        _table("tokens", ["name", "scope map", "status", "created"], rows)

    _run(config, data_dir, database_url, act)


@token.command("credential")
def token_credential(
    name: str,
    password_name: Annotated[str, typer.Option(help="password1 or password2")] = "password1",
    expiration: ExpiryOption = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Generate a new password for a token."""

    def act(s: Services) -> None:
        password = s.administration.regenerate_token_password(
            registry_named(s, registry), name, password_name, _utc(expiration)
        )
        _secrets(f"token {name}", name, {password_name: password})

    _run(config, data_dir, database_url, act)


@token.command("update")
def token_update(
    name: str,
    status: Annotated[str, typer.Option(help="enabled or disabled")],
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Enable or disable a token (disabling also revokes its refresh tokens)."""
    if status not in ("enabled", "disabled"):
        fail("status must be enabled or disabled")
    _run(
        config,
        data_dir,
        database_url,
        lambda s: s.administration.set_token_enabled(
            registry_named(s, registry), name, status == "enabled"
        ),
    )


@token.command("delete")
def token_delete(
    name: str,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete a token."""
    _run(
        config,
        data_dir,
        database_url,
        lambda s: s.administration.delete_token(registry_named(s, registry), name),
    )


# -- refresh tokens and keys ------------------------------------------------------------------


@refresh_token.command("revoke")
def refresh_token_revoke(
    subject: Annotated[
        str | None,
        typer.Option(help="admin, token:NAME or identity:ID (default: every refresh token)"),
    ] = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Revoke refresh tokens (their access tokens expire within minutes)."""

    def act(s: Services) -> None:
        count = s.administration.revoke_refresh_tokens(registry_named(s, registry), subject)
        console.print(f"revoked {count} refresh token(s)")

    _run(config, data_dir, database_url, act)


@keys.command("rotate")
def keys_rotate(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Start signing with a new key; tokens signed with older keys stay valid."""
    _run(config, data_dir, database_url, lambda s: console.print(f"signing key {s.keys.rotate()}"))


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    for name, sub in (
        ("credential", credential),
        ("admin-user", admin_user),
        ("anonymous-pull", anonymous_pull),
        ("identity", identity),
        ("role", role),
        ("scope-map", scope_map),
        ("token", token),
        ("refresh-token", refresh_token),
        ("keys", keys),
    ):
        app.add_typer(sub, name=name)
