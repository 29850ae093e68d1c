"""`dockyard network-rule add|list|remove` and `dockyard registry update`: a registry's
network access (ACR's firewall), changed directly in the server's database. Running
servers apply a change from their next request (SQLite) or within two seconds (other
databases); no restart."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from dockyard.auth.network import MAX_RULES, DefaultAction, parse_rule, rule_text
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
from dockyard.metadata.network import (
    NetworkStore,
    NetworkWrites,
    RegistryNetworkRecord,
    TooManyRules,
)
from dockyard.services import Services

network_rule = typer.Typer(
    no_args_is_help=True,
    help="IP rules of a registry's firewall: who may connect when the default action is Deny.",
)
registry = typer.Typer(no_args_is_help=True, help="A registry's network settings.")

RuleArgument = Annotated[
    str, typer.Argument(help="An IPv4 or IPv6 address, or a CIDR block (203.0.113.0/24).")
]


class PublicNetworkAccess(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


def _network(services: Services, name: str | None) -> RegistryNetworkRecord:
    record = NetworkStore(services.meta).registry(registry_named(services, name).name)
    assert record is not None, "registry_named found it"
    return record


def _describe(record: RegistryNetworkRecord) -> str:
    access = "enabled" if record.public_network_access else "disabled"
    return (
        f"registry {record.name}: public network access {access}, "
        f"default action {record.default_action}"
    )


def _parse(rule: str) -> str:
    try:
        return rule_text(parse_rule(rule))
    except ValueError as exc:
        fail(str(exc))
        raise AssertionError from exc


@network_rule.command("add")
def add(
    rule: RuleArgument,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Allow an address or CIDR block to reach the registry."""
    cidr = _parse(rule)
    with local_services(config, data_dir, database_url) as services:
        record = _network(services, registry_name)
        try:
            with services.meta.transaction() as tx:
                added = NetworkWrites(tx).add_rule(record.id, cidr, MAX_RULES)
        except TooManyRules as exc:
            fail(str(exc))
        console.print(f"{'allowed' if added else 'already allowed'}: {cidr} ({record.name})")
        if record.default_action == DefaultAction.ALLOW:
            console.print(
                "note: the default action is Allow, so everyone may connect; rules limit "
                f"access once it is Deny: dockyard registry update --registry {record.name} "
                "--default-action Deny"
            )


@network_rule.command("remove")
def remove(
    rule: RuleArgument,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Remove an allow rule."""
    cidr = _parse(rule)
    with local_services(config, data_dir, database_url) as services:
        record = _network(services, registry_name)
        with services.meta.transaction() as tx:
            removed = NetworkWrites(tx).remove_rule(record.id, cidr)
        if not removed:
            fail(f"registry {record.name} has no rule {cidr}")
        console.print(f"removed: {cidr} ({record.name})")


@network_rule.command("list")
def list_rules(
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The registry's network settings and allow rules."""
    with local_services(config, data_dir, database_url) as services:
        record = _network(services, registry_name)
        rules = NetworkStore(services.meta).rules(record.id)
    console.print(_describe(record))
    table = Table("rule", "action", "created")
    for rule in rules:
        table.add_row(rule.rule, rule.action, f"{rule.created_at:%Y-%m-%d %H:%M:%S}Z")
    console.print(table)


@registry.command("update")
def update(
    public_network_access: Annotated[
        PublicNetworkAccess | None,
        typer.Option(
            case_sensitive=False, help="disabled refuses every client, whatever the rules."
        ),
    ] = None,
    default_action: Annotated[
        DefaultAction | None,
        typer.Option(
            case_sensitive=False, help="Deny admits only the addresses of the network rules."
        ),
    ] = None,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Change a registry's public network access or default network action."""
    if public_network_access is None and default_action is None:
        fail("nothing to change: give --public-network-access and/or --default-action")
    with local_services(config, data_dir, database_url) as services:
        record = _network(services, registry_name)
        with services.meta.transaction() as tx:
            NetworkWrites(tx).set_access(
                record.id,
                None
                if public_network_access is None
                else public_network_access is PublicNetworkAccess.enabled,
                default_action,
            )
        console.print(_describe(_network(services, record.name)))


def register(app: typer.Typer) -> None:
    app.add_typer(network_rule, name="network-rule")
    app.add_typer(registry, name="registry")
