"""`dockyard config retention|soft-delete update|show`: a registry's image lifecycle
policies, as `az acr config ...` sets them, changed directly in the server's database.
Servers apply them from their next request or background run; no restart. Shown as ACR
shows them (`az acr config retention show`, the ARM `softDeletePolicy`)."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from dockyard.cli.local import (
    OFFLINE,
    OFFLINE_EPILOG,
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    fail,
    local_services,
    registry_named,
)
from dockyard.core.errors import RequestInvalid, TierLimit

if TYPE_CHECKING:
    from dockyard.metadata.lifecycle import Policy

config = typer.Typer(no_args_is_help=True, help="A registry's image lifecycle policies.")
retention = typer.Typer(
    no_args_is_help=True,
    help="The retention policy: untagged manifests are deleted after a number of days.",
)

soft_delete = typer.Typer(
    no_args_is_help=True,
    help="The soft delete policy: deleted images go to a recycle bin, restorable for days.",
)


class Status(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class PolicyType(StrEnum):
    untagged_manifests = "UntaggedManifests"


def _shown(policy: Policy) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "days": policy.days,
        "status": "enabled" if policy.enabled else "disabled",
        "type": PolicyType.untagged_manifests.value,
    }
    if policy.enabled_at is not None:
        shown["enabledTime"] = policy.enabled_at.isoformat()
    return shown


def _print(shown: dict[str, Any]) -> None:
    typer.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())


@retention.command("show")
def retention_show(
    registry_name: RegistryOption = None,
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show the retention policy."""
    with local_services(config_file, data_dir, database_url) as services:
        _print(_shown(services.retention.policy(registry_named(services, registry_name))))


@retention.command("update")
def retention_update(
    status: Annotated[Status | None, typer.Option(help="enabled or disabled.")] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Days an untagged manifest is kept, 0 to 365 (0: the next run)."),
    ] = None,
    policy_type: Annotated[
        PolicyType, typer.Option("--type", help="The only type: UntaggedManifests.")
    ] = PolicyType.untagged_manifests,
    registry_name: RegistryOption = None,
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Turn the retention policy on or off, or change its days.

    Manifests untagged while it is on are deleted that many days after they lost their
    last tag, unless tagged again or locked. It cannot be on with soft delete.
    """
    if status is None and days is None:
        fail("nothing to change: give --status and/or --days")
    with local_services(config_file, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        try:
            policy = services.retention.update(
                registry, None if status is None else status is Status.enabled, days
            )
        except (RequestInvalid, TierLimit) as exc:
            fail(exc.message)
            raise AssertionError from exc
        _print(_shown(policy))


def _soft_delete_shown(policy: Policy) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "retentionDays": policy.days,
        "status": "enabled" if policy.enabled else "disabled",
    }
    if policy.enabled_at is not None:
        shown["enabledTime"] = policy.enabled_at.isoformat()
    return shown


@soft_delete.command("show")
def soft_delete_show(
    registry_name: RegistryOption = None,
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show the soft delete policy."""
    with local_services(config_file, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        _print(_soft_delete_shown(services.soft_delete.policy(registry)))


@soft_delete.command("update")
def soft_delete_update(
    status: Annotated[Status | None, typer.Option(help="enabled or disabled.")] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Days a deleted item stays restorable, 1 to 90 (default 7)."),
    ] = None,
    registry_name: RegistryOption = None,
    config_file: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Turn the soft delete policy on or off, or change its days.

    While it is on, deleted manifests, tags and repositories can be listed and restored
    (/acr/v1/_deleted/...) until they expire. It cannot be on with retention.
    """
    if status is None and days is None:
        fail("nothing to change: give --status and/or --days")
    with local_services(config_file, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        try:
            policy = services.soft_delete.update(
                registry, None if status is None else status is Status.enabled, days
            )
        except RequestInvalid as exc:
            fail(exc.message)
            raise AssertionError from exc
        _print(_soft_delete_shown(policy))


def register(app: typer.Typer) -> None:
    config.add_typer(retention, name="retention")
    config.add_typer(soft_delete, name="soft-delete")
    app.add_typer(config, name="config", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)
