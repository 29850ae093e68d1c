"""`dockyard scope-map create|update|show|list|delete` and `dockyard token
create|update|show|list|delete|credential generate`, as `az acr scope-map` and
`az acr token`: repository-scoped tokens through the server's management API
(cli/management.py). A token's passwords are shown once, when made."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command
from dockyard.cli.remote import Output, OutputOption, print_json

scope_map = typer.Typer(
    no_args_is_help=True, help="Scope maps: what tokens may do, repository by repository."
)
token = typer.Typer(no_args_is_help=True, help="Repository-scoped tokens (az acr token).")
token_credential = typer.Typer(no_args_is_help=True, help="A token's passwords.")
token.add_typer(token_credential, name="credential")

RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry", "-r", help="Registry name (or its login server).", show_default=False
    ),
]
ScopeMapName = Annotated[
    str, typer.Option("--name", "-n", help="Scope map name: 5-50 letters, digits, - or _.")
]
TokenName = Annotated[
    str, typer.Option("--name", "-n", help="Token name: 5-50 letters, digits, -.")
]
RepositoryOption = Annotated[
    list[str] | None,
    typer.Option(
        "--repository",
        help="'REPO ACTION[,ACTION]', repeatable, e.g. --repository 'samples/* content/read'; "
        "actions: content/read, content/write, content/delete, metadata/read, metadata/write.",
    ),
]
StatusOption = Annotated[str | None, typer.Option("--status", help="enabled or disabled.")]
ExpirationDaysOption = Annotated[
    int | None,
    typer.Option("--expiration-in-days", min=1, help="The passwords stop working after this."),
]
ExpirationOption = Annotated[
    datetime | None,
    typer.Option("--expiration", help="The passwords stop working then (UTC unless given)."),
]


def _actions(given: list[str] | None) -> list[str]:
    """`--repository 'REPO ACTION[,ACTION]'` as ARM's `repositories/REPO/ACTION` list."""
    actions = []
    for entry in given or []:
        repository, _, words = entry.strip().partition(" ")
        if not words.strip():
            fail(f"--repository {entry!r} names no action: give 'REPO content/read,...'")
        actions += [f"repositories/{repository}/{word}" for word in words.replace(",", " ").split()]
    return actions


def _status(value: str | None) -> str | None:
    if value is not None and value not in ("enabled", "disabled"):
        fail("--status must be enabled or disabled")
    return value


# -- scope maps --------------------------------------------------------------------------------


def _show_maps(maps: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(maps)
        return
    table = Table("NAME", "TYPE", "ACTIONS", "DESCRIPTION")
    for found in maps:
        properties = found["properties"]
        table.add_row(
            found["name"],
            properties["type"],
            "\n".join(properties["actions"]),
            properties.get("description") or "",
        )
    console.print(table)


@command(scope_map, "create")
def scope_map_create(
    api: Management,
    name: ScopeMapName,
    registry: RegistryOption,
    repository: RepositoryOption = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a scope map."""
    actions = _actions(repository)
    if not actions:
        fail("give --repository 'REPO ACTION[,ACTION]' (repeatable)")
    body = {"properties": {"actions": actions, "description": description}}
    made = api.create(api.child_url(registry, "scopeMaps", name), f"scope map {name}", body)
    _show_maps([made], output)


@command(scope_map, "update")
def scope_map_update(
    api: Management,
    name: ScopeMapName,
    registry: RegistryOption,
    add_repository: Annotated[
        list[str] | None,
        typer.Option("--add-repository", help="'REPO ACTION[,ACTION]' to add, repeatable."),
    ] = None,
    remove_repository: Annotated[
        list[str] | None,
        typer.Option("--remove-repository", help="'REPO ACTION[,ACTION]' to remove, repeatable."),
    ] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    output: OutputOption = Output.table,
) -> None:
    """Add or remove actions, or change the description."""
    url = api.child_url(registry, "scopeMaps", name)
    properties: dict[str, Any] = {}
    if add_repository or remove_repository:
        current = api.call("GET", url)["properties"]["actions"]
        removed = set(_actions(remove_repository))
        added = [a for a in _actions(add_repository) if a not in current]
        properties["actions"] = [a for a in current if a not in removed] + added
    if description is not None:
        properties["description"] = description
    if not properties:
        fail("nothing to change: give --add-repository, --remove-repository or --description")
    _show_maps([api.call("PATCH", url, json={"properties": properties})], output)


@command(scope_map, "show")
def scope_map_show(
    api: Management,
    name: ScopeMapName,
    registry: RegistryOption,
    output: OutputOption = Output.table,
) -> None:
    """One scope map."""
    _show_maps([api.call("GET", api.child_url(registry, "scopeMaps", name))], output)


@command(scope_map, "list")
def scope_map_list(
    api: Management, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """The registry's scope maps (the built-in ones too)."""
    _show_maps(api.values(api.child_url(registry, "scopeMaps")), output)


@command(scope_map, "delete")
def scope_map_delete(api: Management, name: ScopeMapName, registry: RegistryOption) -> None:
    """Delete a scope map no token uses."""
    api.delete(api.child_url(registry, "scopeMaps", name))
    console.print(f"scope map {name} deleted")


# -- tokens ------------------------------------------------------------------------------------


def _show_tokens(tokens: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(tokens)
        return
    table = Table("NAME", "SCOPE MAP", "STATUS", "CREATED", "PASSWORDS")
    for found in tokens:
        properties = found["properties"]
        passwords = properties["credentials"]["passwords"]
        table.add_row(
            found["name"],
            properties["scopeMapId"].rsplit("/", 1)[-1],
            properties["status"],
            properties["creationDate"],
            ", ".join(f"{p['name']} (expires {p['expiry'] or 'never'})" for p in passwords),
        )
    console.print(table)


def _show_passwords(generated: dict[str, Any], output: Output) -> None:
    if output is Output.json:
        print_json(generated)
        return
    console.print(f"[bold]token {generated['username']}[/bold] (shown once: store them now)")
    console.print(f"username: {generated['username']}")
    for password in generated["passwords"]:
        console.print(f"{password['name']}: {password['value']}", soft_wrap=True)


def _expiry(days: int | None, moment: datetime | None) -> datetime | None:
    if days is not None and moment is not None:
        fail("give --expiration-in-days or --expiration, not both")
    if days is not None:
        return datetime.now(UTC) + timedelta(days=days)
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _generate(
    api: Management, registry: str, name: str, names: list[str], expiry: datetime | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"tokenId": api.child_url(registry, "tokens", name)}
    if expiry is not None:
        body["expiry"] = expiry.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if len(names) == 1:
        body["name"] = names[0]
    return api.call("POST", f"{api.registry_url(registry)}/generateCredentials", json=body)


@command(token, "create")
def token_create(
    api: Management,
    name: TokenName,
    registry: RegistryOption,
    scope_map_name: Annotated[
        str, typer.Option("--scope-map", help="The scope map it works under.", show_default=False)
    ],
    status: StatusOption = None,
    expiration_in_days: ExpirationDaysOption = None,
    expiration: ExpirationOption = None,
    no_passwords: Annotated[
        bool, typer.Option("--no-passwords", help="Make no passwords yet (credential generate).")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Create a token bound to a scope map, and its two passwords (shown once)."""
    properties: dict[str, Any] = {
        "scopeMapId": api.child_url(registry, "scopeMaps", scope_map_name)
    }
    if _status(status) is not None:
        properties["status"] = status
    url = api.child_url(registry, "tokens", name)
    created = api.create(url, f"token {name}", {"properties": properties})
    if no_passwords:
        _show_tokens([created], output)
        return
    expiry = _expiry(expiration_in_days, expiration)
    generated = _generate(api, registry, name, ["password1", "password2"], expiry)
    _show_passwords(generated, output)


@command(token, "update")
def token_update(
    api: Management,
    name: TokenName,
    registry: RegistryOption,
    scope_map_name: Annotated[
        str | None, typer.Option("--scope-map", help="Another scope map.")
    ] = None,
    status: StatusOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Enable or disable a token (disabling also revokes its refresh tokens), or move it
    to another scope map."""
    properties: dict[str, Any] = {}
    if _status(status) is not None:
        properties["status"] = status
    if scope_map_name is not None:
        properties["scopeMapId"] = api.child_url(registry, "scopeMaps", scope_map_name)
    if not properties:
        fail("nothing to change: give --status or --scope-map")
    updated = api.call(
        "PATCH", api.child_url(registry, "tokens", name), json={"properties": properties}
    )
    _show_tokens([updated], output)


@command(token, "show")
def token_show(
    api: Management, name: TokenName, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """One token (never its passwords: they are shown once, when made)."""
    _show_tokens([api.call("GET", api.child_url(registry, "tokens", name))], output)


@command(token, "list")
def token_list(
    api: Management, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """The registry's tokens."""
    _show_tokens(api.values(api.child_url(registry, "tokens")), output)


@command(token, "delete")
def token_delete(api: Management, name: TokenName, registry: RegistryOption) -> None:
    """Delete a token: its passwords and refresh tokens stop working."""
    api.delete(api.child_url(registry, "tokens", name))
    console.print(f"token {name} deleted")


@command(token_credential, "generate")
def token_credential_generate(
    api: Management,
    name: TokenName,
    registry: RegistryOption,
    password1: Annotated[bool, typer.Option("--password1", help="Only password1.")] = False,
    password2: Annotated[bool, typer.Option("--password2", help="Only password2.")] = False,
    expiration_in_days: ExpirationDaysOption = None,
    expiration: ExpirationOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Make new passwords for a token (both, or the one named), shown once; the old
    values stop working."""
    names = [n for n, wanted in (("password1", password1), ("password2", password2)) if wanted]
    expiry = _expiry(expiration_in_days, expiration)
    generated = _generate(api, registry, name, names or ["password1", "password2"], expiry)
    _show_passwords(generated, output)


def register(app: typer.Typer) -> None:
    app.add_typer(scope_map, name="scope-map", rich_help_panel=ONLINE)
    app.add_typer(token, name="token", rich_help_panel=ONLINE)
