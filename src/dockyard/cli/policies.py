"""`dockyard config retention|soft-delete update|show`: a registry's image lifecycle
policies, as `az acr config ...` sets them, through the server's management API (the
registry's `policies.retentionPolicy` and `softDeletePolicy`; cli/management.py).
Servers apply them from their next request or background run; no restart."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer

from dockyard.cli.local import ONLINE, fail
from dockyard.cli.management import Management, command
from dockyard.cli.remote import print_json

config = typer.Typer(no_args_is_help=True, help="A registry's image lifecycle policies.")
retention = typer.Typer(
    no_args_is_help=True,
    help="The retention policy: untagged manifests are deleted after a number of days.",
)
soft_delete = typer.Typer(
    no_args_is_help=True,
    help="The soft delete policy: deleted images go to a recycle bin, restorable for days.",
)

RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry", "-r", help="Registry name (or its login server).", show_default=False
    ),
]


class Status(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class PolicyType(StrEnum):
    untagged_manifests = "UntaggedManifests"


def _policy(api: Management, registry: str, key: str) -> dict[str, Any]:
    return api.registry(registry)["properties"]["policies"][key]


def _update(
    api: Management, registry: str, key: str, days_field: str, status: Status | None, days: Any
) -> dict[str, Any]:
    if status is None and days is None:
        fail("nothing to change: give --status and/or --days")
    wanted = {"status": status and status.value, days_field: days}
    policy = {field: value for field, value in wanted.items() if value is not None}
    body = {"properties": {"policies": {key: policy}}}
    return api.call("PATCH", api.registry_url(registry), json=body)["properties"]["policies"][key]


@command(retention, "show")
def retention_show(api: Management, registry: RegistryOption) -> None:
    """Show the retention policy."""
    print_json(_policy(api, registry, "retentionPolicy"))


@command(retention, "update")
def retention_update(
    api: Management,
    registry: RegistryOption,
    status: Annotated[Status | None, typer.Option(help="enabled or disabled.")] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Days an untagged manifest is kept, 0 to 365 (0: the next run)."),
    ] = None,
    policy_type: Annotated[
        PolicyType, typer.Option("--type", help="The only type: UntaggedManifests.")
    ] = PolicyType.untagged_manifests,
) -> None:
    """Turn the retention policy on or off, or change its days.

    Manifests untagged while it is on are deleted that many days after they lost their
    last tag, unless tagged again or locked. It cannot be on with soft delete.
    """
    print_json(_update(api, registry, "retentionPolicy", "days", status, days))


@command(soft_delete, "show")
def soft_delete_show(api: Management, registry: RegistryOption) -> None:
    """Show the soft delete policy."""
    print_json(_policy(api, registry, "softDeletePolicy"))


@command(soft_delete, "update")
def soft_delete_update(
    api: Management,
    registry: RegistryOption,
    status: Annotated[Status | None, typer.Option(help="enabled or disabled.")] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Days a deleted item stays restorable, 1 to 90 (default 7)."),
    ] = None,
) -> None:
    """Turn the soft delete policy on or off, or change its days.

    While it is on, deleted manifests, tags and repositories can be listed and restored
    (/acr/v1/_deleted/...) until they expire. It cannot be on with retention.
    """
    print_json(_update(api, registry, "softDeletePolicy", "retentionDays", status, days))


def register(app: typer.Typer) -> None:
    config.add_typer(retention, name="retention")
    config.add_typer(soft_delete, name="soft-delete")
    app.add_typer(config, name="config", rich_help_panel=ONLINE)
