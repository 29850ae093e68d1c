"""`dockyard logs query`: the audit log (ACR's ContainerRegistryRepositoryEvents and
ContainerRegistryLoginEvents columns) of a registry, through the server's management
API (its `registries/{name}/logs` extension; cli/management.py), as a table, a JSON
array or JSON lines (one row per line, for export)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console
from dockyard.cli.management import Management, command, spinner
from dockyard.cli.remote import print_json

_TABLE_COLUMNS = {
    "repository": (
        "TimeGenerated",
        "OperationName",
        "Repository",
        "Tag",
        "Digest",
        "Identity",
        "ResultType",
        "CallerIpAddress",
    ),
    "login": (
        "TimeGenerated",
        "OperationName",
        "Method",
        "Identity",
        "ResultType",
        "CallerIpAddress",
    ),
}


class Kind(StrEnum):
    repository = "repository"
    login = "login"


class LogOutput(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


def query(
    api: Management,
    registry: Annotated[
        str,
        typer.Option(
            "--registry", "-r", help="Registry name (or its login server).", show_default=False
        ),
    ],
    kind: Annotated[Kind, typer.Option(help="repository or login events.")] = Kind.repository,
    since: Annotated[
        str | None, typer.Option(help="From this time: 2h, 3d12h (ago) or ISO 8601.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Before this time: 30m (ago) or ISO 8601.")
    ] = None,
    identity: Annotated[
        str | None, typer.Option(help="Who: admin user, token or identity name.")
    ] = None,
    repository: Annotated[str | None, typer.Option(help="This repository only.")] = None,
    operation: Annotated[
        str | None,
        typer.Option(help="Push, Pull, Untag, Delete; for logins the method (password, ...)."),
    ] = None,
    result: Annotated[
        str | None, typer.Option(help="success (below 400), failure, or a status: 404.")
    ] = None,
    top: Annotated[
        int, typer.Option(min=1, max=10_000, help="At most this many rows, newest first.")
    ] = 1000,
    output: Annotated[
        LogOutput, typer.Option("--output", "-o", help="table, json or jsonl.")
    ] = LogOutput.table,
) -> None:
    """Audit log entries of a registry, newest first."""
    given = {
        "kind": kind.value,
        "since": since,
        "until": until,
        "identity": identity,
        "repository": repository,
        "operation": operation,
        "result": result,
        "top": str(top),
    }
    params = {key: value for key, value in given.items() if value is not None}
    url = f"{api.registry_url(registry)}/logs"
    with spinner("reading the audit log"):
        rows = api.values(url, params=params)
    if output is LogOutput.json:
        print_json(rows)
    elif output is LogOutput.jsonl:
        for row in rows:
            typer.echo(json.dumps(row))
    else:
        columns = _TABLE_COLUMNS[kind.value]
        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        console.print(table)


def register(app: typer.Typer) -> None:
    logs = typer.Typer(no_args_is_help=True, help="The audit log: repository and login events.")
    command(logs, "query")(query)
    app.add_typer(logs, name="logs", rich_help_panel=ONLINE)
