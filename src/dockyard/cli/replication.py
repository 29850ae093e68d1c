"""`dockyard replication create|list|show|update|delete`, as `az acr replication`: a
registry's replications in the peer regions `[region] peers` names, through the server's
management API (cli/management.py), with what ACR does not show: each replica's queue
depth, lag and last error."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command
from dockyard.cli.remote import Output, OutputOption, print_json

replication = typer.Typer(
    no_args_is_help=True,
    help="Geo-replication: the regions a registry is replicated to (az acr replication).",
)

NameOption = Annotated[
    str, typer.Option("--name", "-n", help="Replication name: 5-50 letters or digits.")
]
RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry", "-r", help="Registry name (or its login server).", show_default=False
    ),
]
RoutingOption = Annotated[
    bool | None,
    typer.Option(
        "--global-endpoint-routing/--no-global-endpoint-routing",
        help="Whether the global endpoint may route to this replica (regionEndpointEnabled).",
    ),
]
TagsOption = Annotated[
    list[str] | None, typer.Option("--tags", help="Resource tag KEY=VALUE (repeat).")
]


def _tags(given: list[str] | None) -> dict[str, str] | None:
    if given is None:
        return None
    tags = {}
    for item in given:
        name, _, value = item.partition("=")
        tags[name.strip()] = value.strip()
    return tags


def _show(replicas: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(replicas)
        return
    table = Table(
        "NAME", "LOCATION", "STATUS", "QUEUE", "LAG (s)", "ROUTED", "REGIONAL HOST", "MESSAGE"
    )
    for replica in replicas:
        properties = replica["properties"]
        status = properties["status"]
        table.add_row(
            replica["name"],
            replica["location"],
            status["displayStatus"],
            str(status.get("queueDepth", 0)),
            f"{status.get('lagSeconds', 0):.1f}",
            "yes" if properties["regionEndpointEnabled"] else "no",
            properties.get("regionalEndpointHostName") or "",
            status.get("lastError") or status["message"],
        )
    console.print(table)


@command(replication, "create")
def create(
    api: Management,
    registry: RegistryOption,
    location: Annotated[str, typer.Option("--location", "-l", help="A peer region.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Default: the location, lower-cased.")
    ] = None,
    routing: RoutingOption = None,
    tags: TagsOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Replicate the registry to a peer region: what it holds now, then every change."""
    name = name or location.replace(" ", "").lower()
    properties: dict[str, Any] = {}
    if routing is not None:
        properties["regionEndpointEnabled"] = routing
    body = {"location": location, "tags": _tags(tags) or {}, "properties": properties}
    url = api.child_url(registry, "replications", name)
    _show([api.create(url, f"replication {name}", body)], output)


@command(replication, "list")
def list_(api: Management, registry: RegistryOption, output: OutputOption = Output.table) -> None:
    """The registry's replications, its home region's first."""
    _show(api.values(api.child_url(registry, "replications")), output)


@command(replication, "show")
def show(
    api: Management, name: NameOption, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """One replication, with its queue depth, lag and last error."""
    _show([api.call("GET", api.child_url(registry, "replications", name))], output)


@command(replication, "update")
def update(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    routing: RoutingOption = None,
    tags: TagsOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Change whether the global endpoint routes to the replica, or its tags."""
    body: dict[str, Any] = {}
    if routing is not None:
        body["properties"] = {"regionEndpointEnabled": routing}
    if tags is not None:
        body["tags"] = _tags(tags)
    if not body:
        fail("nothing to change: give --global-endpoint-routing or --tags")
    _show([api.call("PATCH", api.child_url(registry, "replications", name), json=body)], output)


@command(replication, "delete")
def delete(api: Management, name: NameOption, registry: RegistryOption) -> None:
    """Stop replicating to the region (what it holds stays there)."""
    api.delete(api.child_url(registry, "replications", name))
    console.print(f"replication {name} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(replication, name="replication", rich_help_panel=ONLINE)
