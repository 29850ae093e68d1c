"""`dockyard network-rule add|list|remove` and `dockyard registry update`: a registry's
network access (ACR's firewall), its tier (SKU) and storage quota, changed directly in
the server's database. Running servers apply a change from their next request (SQLite)
or within two seconds (other databases); no restart."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

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
from dockyard.cli.usage import describe_tier
from dockyard.core.errors import RegistryError

if TYPE_CHECKING:
    from dockyard.metadata.network import RegistryNetworkRecord
    from dockyard.services import Services

network_rule = typer.Typer(
    no_args_is_help=True,
    help="IP rules of a registry's firewall: who may connect when the default action is Deny.",
)
registry = typer.Typer(
    no_args_is_help=True, help="A registry's tier, storage quota and network settings."
)

RuleArgument = Annotated[
    str, typer.Argument(help="An IPv4 or IPv6 address, or a CIDR block (203.0.113.0/24).")
]


class PublicNetworkAccess(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class DefaultAction(StrEnum):
    """`auth.network.DefaultAction`'s values, without importing it before a command runs."""

    Allow = "Allow"
    Deny = "Deny"


def _network(services: Services, name: str | None) -> RegistryNetworkRecord:
    from dockyard.metadata.network import NetworkStore

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
    from dockyard.auth.network import parse_rule, rule_text

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
    from dockyard.core.tiers import Feature
    from dockyard.metadata.network import NetworkWrites, TooManyRules

    cidr = _parse(rule)
    with local_services(config, data_dir, database_url) as services:
        record = _network(services, registry_name)
        target = registry_named(services, record.name)
        try:
            services.usages.require(target, Feature.NETWORK_RULES)
            limit = services.usages.tier(target).ip_rules
            with services.meta.transaction() as tx:
                added = NetworkWrites(tx).add_rule(record.id, cidr, limit)
        except RegistryError as exc:
            fail(exc.message)
        except TooManyRules as exc:
            fail(str(exc))
        console.print(f"{'allowed' if added else 'already allowed'}: {cidr} ({record.name})")
        if record.default_action == DefaultAction.Allow:
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
    from dockyard.metadata.network import NetworkWrites

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
    from dockyard.metadata.network import NetworkStore

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
    sku: Annotated[
        str | None,
        typer.Option(
            help="Basic, Standard or Premium: the tier's limits apply at once; a tier that "
            "what the registry uses does not fit is refused with the reason."
        ),
    ] = None,
    storage_quota: Annotated[
        str | None,
        typer.Option(
            help="The registry's own storage quota (e.g. 50GiB, 2TiB), replacing its "
            "tier's storage limit; 'tier' goes back to the tier's."
        ),
    ] = None,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Change a registry's tier, storage quota, public network access or default network
    action."""
    from dockyard.auth.network import DefaultAction as Action
    from dockyard.core.sizes import parse_size
    from dockyard.core.tiers import Feature
    from dockyard.metadata.network import NetworkWrites

    if (public_network_access, default_action, sku, storage_quota) == (None,) * 4:
        fail(
            "nothing to change: give --sku, --storage-quota, --public-network-access "
            "and/or --default-action"
        )
    with local_services(config, data_dir, database_url) as services:
        record = _network(services, registry_name)
        target = registry_named(services, record.name)
        try:
            if sku is not None:
                services.usages.change_sku(target, sku)
            if storage_quota is not None:
                quota = None if storage_quota.lower() == "tier" else parse_size(storage_quota)
                services.usages.set_storage_quota(target, quota)
        except RegistryError as exc:
            fail(exc.message)
        if sku is not None or storage_quota is not None:
            console.print(describe_tier(services, target))
        if public_network_access is None and default_action is None:
            return
        if (
            public_network_access is PublicNetworkAccess.disabled
            or default_action is DefaultAction.Deny
        ):
            try:
                services.usages.require(target, Feature.NETWORK_RULES)
            except RegistryError as exc:
                fail(exc.message)
        with services.meta.transaction() as tx:
            NetworkWrites(tx).set_access(
                record.id,
                None
                if public_network_access is None
                else public_network_access is PublicNetworkAccess.enabled,
                None if default_action is None else Action(default_action.value),
            )
        console.print(_describe(_network(services, record.name)))


def register(app: typer.Typer) -> None:
    app.add_typer(network_rule, name="network-rule")
    app.add_typer(registry, name="registry")
