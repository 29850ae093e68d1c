"""`dockyard cache create|list|show|update|delete` and `dockyard credential-set
create|list|show|update|delete`, as `az acr cache` and `az acr credential-set`: the
pull-through cache's rules and upstream logins, through the server's management API
(`cacheRules`, `credentialSets`; cli/management.py). Running servers use a change from
their next cache miss; no restart. A credential set's password is sent once and never
shown again."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command
from dockyard.cli.remote import Output, OutputOption, print_json

cache = typer.Typer(
    no_args_is_help=True,
    help="Cache rules: pulls of a repository that miss are fetched from an upstream one.",
)
credential_set = typer.Typer(
    no_args_is_help=True, help="Logins to upstream registries, for cache rules."
)

NameOption = Annotated[str, typer.Option("--name", "-n", help="Name: 5-50 letters, digits, -.")]
RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry", "-r", help="Registry name (or its login server).", show_default=False
    ),
]
CredentialSetOption = Annotated[
    str | None,
    typer.Option("--cred-set", "-c", help="Credential set to log in upstream with."),
]


def _rules(rules: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(rules)
        return
    table = Table("NAME", "SOURCE REPOSITORY", "TARGET REPOSITORY", "CREDENTIAL SET", "CREATED")
    for rule in rules:
        properties = rule["properties"]
        credential = properties.get("credentialSetResourceId") or ""
        table.add_row(
            rule["name"],
            properties["sourceRepository"],
            properties["targetRepository"],
            credential.rsplit("/", 1)[-1],
            properties["creationDate"],
        )
    console.print(table)


def _sets(sets: list[dict[str, Any]], output: Output) -> None:
    """Never the password: the server keeps it sealed, and shows it to nobody."""
    if output is Output.json:
        print_json(sets)
        return
    table = Table("NAME", "LOGIN SERVER", "USERNAME", "CREATED")
    for found in sets:
        properties = found["properties"]
        logins = properties.get("authCredentials") or [{}]
        table.add_row(
            found["name"],
            properties["loginServer"],
            logins[0].get("usernameSecretIdentifier", ""),
            properties["creationDate"],
        )
    console.print(table)


# -- cache rules ---------------------------------------------------------------------------


@command(cache, "create")
def cache_create(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    source_repo: Annotated[
        str,
        typer.Option(
            "--source-repo",
            "-s",
            help="Upstream HOST/REPOSITORY (docker.io/library/ubuntu), or HOST/PREFIX/* .",
        ),
    ],
    target_repo: Annotated[
        str,
        typer.Option(
            "--target-repo", "-t", help="Repository here (a new one), or PREFIX/* with a * source."
        ),
    ],
    cred_set: CredentialSetOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a cache rule: pulls of the target that find nothing are fetched upstream."""
    url = api.child_url(registry, "cacheRules", name)
    properties: dict[str, Any] = {"sourceRepository": source_repo, "targetRepository": target_repo}
    if cred_set is not None:
        properties["credentialSetResourceId"] = api.child_url(registry, "credentialSets", cred_set)
    _rules([api.create(url, f"cache rule {name}", {"properties": properties})], output)


@command(cache, "list")
def cache_list(
    api: Management, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """The registry's cache rules."""
    _rules(api.values(api.child_url(registry, "cacheRules")), output)


@command(cache, "show")
def cache_show(
    api: Management, name: NameOption, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """One cache rule."""
    _rules([api.call("GET", api.child_url(registry, "cacheRules", name))], output)


@command(cache, "update")
def cache_update(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    cred_set: CredentialSetOption = None,
    remove_cred_set: Annotated[
        bool, typer.Option("--remove-cred-set", help="Pull from upstream without a login.")
    ] = False,
    output: OutputOption = Output.table,
) -> None:
    """Change a cache rule's credential set (the only thing that can change)."""
    if (cred_set is None) == (not remove_cred_set):
        fail("give either --cred-set NAME or --remove-cred-set")
    credential = None if cred_set is None else api.child_url(registry, "credentialSets", cred_set)
    body = {"properties": {"credentialSetResourceId": credential}}
    _rules([api.call("PATCH", api.child_url(registry, "cacheRules", name), json=body)], output)


@command(cache, "delete")
def cache_delete(api: Management, name: NameOption, registry: RegistryOption) -> None:
    """Delete a cache rule; what it cached stays, as ordinary repositories."""
    api.delete(api.child_url(registry, "cacheRules", name))
    console.print(f"deleted cache rule {name} ({registry})")


# -- credential sets -------------------------------------------------------------------------

PasswordHelp = "Upstream password or token (or DOCKYARD_CREDENTIAL_PASSWORD); kept sealed."


@command(credential_set, "create")
def set_create(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    login_server: Annotated[
        str, typer.Option("--login-server", "-l", help="Upstream HOST[:PORT] (docker.io).")
    ],
    username: Annotated[str, typer.Option("--username", "-u", help="Upstream user name.")],
    password: Annotated[
        str,
        typer.Option("--password", "-p", envvar="DOCKYARD_CREDENTIAL_PASSWORD", help=PasswordHelp),
    ],
    output: OutputOption = Output.table,
) -> None:
    """Create a credential set: a login to an upstream registry."""
    url = api.child_url(registry, "credentialSets", name)
    login = {"usernameSecretIdentifier": username, "passwordSecretIdentifier": password}
    body = {"properties": {"loginServer": login_server, "authCredentials": [login]}}
    _sets([api.create(url, f"credential set {name}", body)], output)


@command(credential_set, "list")
def set_list(
    api: Management, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """The registry's credential sets (never their passwords)."""
    _sets(api.values(api.child_url(registry, "credentialSets")), output)


@command(credential_set, "show")
def set_show(
    api: Management, name: NameOption, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """One credential set (never its password)."""
    _sets([api.call("GET", api.child_url(registry, "credentialSets", name))], output)


@command(credential_set, "update")
def set_update(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="New upstream user name.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option("--password", "-p", envvar="DOCKYARD_CREDENTIAL_PASSWORD", help=PasswordHelp),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Change a credential set's user name and/or password."""
    if username is None and password is None:
        fail("nothing to change: give --username and/or --password")
    login = {"usernameSecretIdentifier": username, "passwordSecretIdentifier": password}
    given = {key: value for key, value in login.items() if value is not None}
    body = {"properties": {"authCredentials": [given]}}
    _sets([api.call("PATCH", api.child_url(registry, "credentialSets", name), json=body)], output)


@command(credential_set, "delete")
def set_delete(api: Management, name: NameOption, registry: RegistryOption) -> None:
    """Delete a credential set no cache rule uses."""
    api.delete(api.child_url(registry, "credentialSets", name))
    console.print(f"deleted credential set {name} ({registry})")


def register(app: typer.Typer) -> None:
    app.add_typer(cache, name="cache", rich_help_panel=ONLINE)
    app.add_typer(credential_set, name="credential-set", rich_help_panel=ONLINE)
