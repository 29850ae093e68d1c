"""`dockyard cache create|list|show|update|delete` and `dockyard credential-set
create|list|show|update|delete`, as `az acr cache` and `az acr credential-set`: the
pull-through cache's rules and upstream logins, changed in the server's database
(`core.cache_rules` decides what is valid). Running servers use a change from their next
cache miss; no restart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dockyard.cli.local import (
    OFFLINE,
    OFFLINE_EPILOG,
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    fail,
    run_for_registry,
)

if TYPE_CHECKING:
    from dockyard.metadata.cache_rules import CacheRuleRecord, CredentialSetRecord
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services

cache = typer.Typer(
    no_args_is_help=True,
    help="Cache rules: pulls of a repository that miss are fetched from an upstream one.",
)
credential_set = typer.Typer(
    no_args_is_help=True, help="Logins to upstream registries, for cache rules."
)

NameOption = Annotated[str, typer.Option("--name", "-n", help="Name: 5-50 letters, digits, -.")]
CredentialSetOption = Annotated[
    str | None,
    typer.Option("--cred-set", help="Credential set to log in upstream with."),
]


def _rules_table(rules: list[CacheRuleRecord]) -> None:
    table = Table("name", "source repository", "target repository", "credential set", "created")
    for rule in rules:
        table.add_row(
            rule.name,
            rule.source_repository,
            rule.target_repository,
            rule.credential_set or "",
            f"{rule.created_at:%Y-%m-%d %H:%M:%S}Z",
        )
    console.print(table)


def _sets_table(sets: list[CredentialSetRecord]) -> None:
    """Never the password: it is kept sealed, and shown to nobody."""
    table = Table("name", "login server", "username", "created")
    for found in sets:
        table.add_row(
            found.name, found.login_server, found.username, f"{found.created_at:%Y-%m-%d %H:%M:%S}Z"
        )
    console.print(table)


# -- cache rules ---------------------------------------------------------------------------


@cache.command("create")
def cache_create(
    name: NameOption,
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
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a cache rule: pulls of the target that find nothing are fetched upstream."""

    def act(s: Services, registry: RegistryRecord) -> None:
        _rules_table(
            [s.cache_rules.create_rule(registry, name, source_repo, target_repo, cred_set)]
        )

    run_for_registry(registry_name, config, data_dir, database_url, act)


@cache.command("list")
def cache_list(
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The registry's cache rules."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _rules_table(s.cache_rules.rules(registry)),
    )


@cache.command("show")
def cache_show(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """One cache rule."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _rules_table(s.cache_rules.rules(registry, name)),
    )


@cache.command("update")
def cache_update(
    name: NameOption,
    cred_set: CredentialSetOption = None,
    remove_cred_set: Annotated[
        bool, typer.Option("--remove-cred-set", help="Pull from upstream without a login.")
    ] = False,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Change a cache rule's credential set (the only thing that can change)."""
    if (cred_set is None) == (not remove_cred_set):
        fail("give either --cred-set NAME or --remove-cred-set")

    def act(s: Services, registry: RegistryRecord) -> None:
        _rules_table([s.cache_rules.update_rule(registry, name, cred_set)])

    run_for_registry(registry_name, config, data_dir, database_url, act)


@cache.command("delete")
def cache_delete(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete a cache rule; what it cached stays, as ordinary repositories."""

    def act(s: Services, registry: RegistryRecord) -> None:
        s.cache_rules.delete_rule(registry, name)
        console.print(f"deleted cache rule {name} ({registry.name})")

    run_for_registry(registry_name, config, data_dir, database_url, act)


# -- credential sets -------------------------------------------------------------------------


@credential_set.command("create")
def set_create(
    name: NameOption,
    login_server: Annotated[
        str, typer.Option("--login-server", "-l", help="Upstream HOST[:PORT] (docker.io).")
    ],
    username: Annotated[str, typer.Option("--username", "-u", help="Upstream user name.")],
    password: Annotated[
        str,
        typer.Option(
            "--password",
            "-p",
            envvar="DOCKYARD_CREDENTIAL_PASSWORD",
            help="Upstream password or token (or DOCKYARD_CREDENTIAL_PASSWORD); kept sealed.",
        ),
    ],
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Create a credential set: a login to an upstream registry."""

    def act(s: Services, registry: RegistryRecord) -> None:
        _sets_table(
            [s.cache_rules.create_credential_set(registry, name, login_server, username, password)]
        )

    run_for_registry(registry_name, config, data_dir, database_url, act)


@credential_set.command("list")
def set_list(
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The registry's credential sets (never their passwords)."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _sets_table(s.cache_rules.credential_sets(registry)),
    )


@credential_set.command("show")
def set_show(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """One credential set (never its password)."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _sets_table(s.cache_rules.credential_sets(registry, name)),
    )


@credential_set.command("update")
def set_update(
    name: NameOption,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="New upstream user name.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            "-p",
            envvar="DOCKYARD_CREDENTIAL_PASSWORD",
            help="New upstream password or token (or DOCKYARD_CREDENTIAL_PASSWORD).",
        ),
    ] = None,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Change a credential set's user name and/or password."""

    def act(s: Services, registry: RegistryRecord) -> None:
        _sets_table([s.cache_rules.update_credential_set(registry, name, username, password)])

    run_for_registry(registry_name, config, data_dir, database_url, act)


@credential_set.command("delete")
def set_delete(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete a credential set no cache rule uses."""

    def act(s: Services, registry: RegistryRecord) -> None:
        s.cache_rules.delete_credential_set(registry, name)
        console.print(f"deleted credential set {name} ({registry.name})")

    run_for_registry(registry_name, config, data_dir, database_url, act)


def register(app: typer.Typer) -> None:
    for name, group in (("cache", cache), ("credential-set", credential_set)):
        app.add_typer(group, name=name, rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)
