"""`dockyard show-usage`: a registry's use of what its tier limits, as `az acr
show-usage` shows it (a table, or listUsages' JSON with `-o json`), read from the
server's database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.table import Table

from dockyard.cli.garbage import Output
from dockyard.cli.local import (
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    local_services,
    registry_named,
)

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services


def describe_tier(services: Services, registry: RegistryRecord) -> str:
    """One line: the registry's tier, storage quota and use."""
    from dockyard.core.quotas import quota_of
    from dockyard.core.sizes import format_size
    from dockyard.core.tiers import tier_named
    from dockyard.metadata.usage import UsageStore

    storage = UsageStore(services.meta).storage(registry.id)
    tier = tier_named(storage.sku)
    source = "its own" if storage.quota_bytes is not None else "the tier's limit"
    return (
        f"registry {registry.name}: sku {tier.name} (includes "
        f"{format_size(tier.included_storage)}), storage quota "
        f"{format_size(quota_of(storage))} ({source}), {format_size(storage.used_bytes)} used"
    )


def show_usage(
    registry_name: RegistryOption = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = (
        Output.table
    ),
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """What the registry uses of its tier's limits (storage in bytes, webhooks, IP rules,
    tokens, scope maps, ...); a limit of -1 is unlimited."""
    with local_services(config, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        lines = services.usages.usage(registry)
        summary = describe_tier(services, registry)
    if output is Output.json:
        value = [
            {"currentValue": u.current_value, "limit": u.limit, "name": u.name, "unit": u.unit}
            for u in lines
        ]
        typer.echo(orjson.dumps({"value": value}).decode())
        return
    console.print(summary)
    table = Table("NAME", "LIMIT", "CURRENT VALUE", "UNIT")
    for line in lines:
        table.add_row(line.name, str(line.limit), str(line.current_value), line.unit)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("show-usage")(show_usage)
