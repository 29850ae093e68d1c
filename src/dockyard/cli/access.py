"""The `dockyard` commands for identity and access that administer the server itself and
have no public API, so they act offline on its database (`--config`, `--data-dir`,
`--database-url`): identities (the server's users and service principals; `identity
create --server-role Owner` makes the first Owner, who then assigns roles online),
refresh-token revocation and signing-key rotation; and `login`. The admin user, anonymous
pull, role assignments, scope maps and tokens are online verbs (cli/registries.py,
cli/roles.py, cli/tokens.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import (
    OFFLINE,
    OFFLINE_EPILOG,
    ONLINE,
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
from dockyard.common.errors import TierLimit

if TYPE_CHECKING:
    from dockyard.services import Services

identity = typer.Typer(no_args_is_help=True, help="The server's users and service principals.")
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


# -- identities ----------------------------------------------------------------------


@identity.command("create")
def identity_create(
    name: str,
    kind: Annotated[str, typer.Option(help="user or servicePrincipal")] = "servicePrincipal",
    expiration: ExpiryOption = None,
    server_role: Annotated[
        str | None,
        typer.Option(
            help="A role over the whole server, given with the identity: how the first Owner "
            "comes to be (Owners then assign roles with `dockyard role assignment create`)."
        ),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create an identity and its first secret (client id = the identity's id), and
    print the server's tenant with them: the three values `az login` takes."""
    from dockyard.auth.permissions import ROLES

    if server_role is not None and server_role not in ROLES:
        fail(f"unknown role {server_role!r}; roles: {', '.join(ROLES)}")

    def act(s: Services) -> None:
        record, secret = s.administration.create_identity(name, kind, _utc(expiration))
        if server_role is not None:
            s.administration.assign_role(None, record.id, server_role)
        _secrets(f"identity {record.name}", record.id, {"secret": secret})
        # What `az login --service-principal --tenant` takes besides the two above.
        console.print(f"tenant: {s.settings.management.tenant_id}")

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
    app.command("login", rich_help_panel=ONLINE)(login)
    for name, sub in (
        ("identity", identity),
        ("refresh-token", refresh_token),
        ("keys", keys),
    ):
        app.add_typer(sub, name=name, rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)
