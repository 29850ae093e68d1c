"""`dockyard logs query`: the audit log (ACR's ContainerRegistryRepositoryEvents and
ContainerRegistryLoginEvents columns) of a registry, read from the server's database,
as a table, a JSON array or JSON lines (one row per line, for export)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import orjson
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

if TYPE_CHECKING:
    from dockyard.core.audit import LogKind

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


def _moment(value: str, now: datetime) -> datetime:
    from dockyard.core.audit import moment

    try:
        return moment(value, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def query(
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
    top: Annotated[int, typer.Option(help="At most this many rows, newest first.")] = 1000,
    registry_name: RegistryOption = None,
    output: Annotated[
        LogOutput, typer.Option("--output", "-o", help="table, json or jsonl.")
    ] = LogOutput.table,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Audit log entries of a registry, newest first."""
    from dockyard.metadata.audit import AuditFilter

    now = datetime.now(UTC)
    wanted = AuditFilter(
        since=None if since is None else _moment(since, now),
        until=None if until is None else _moment(until, now),
        identity=identity,
        repository=repository,
        operation=operation,
        result=result,
    )
    if top < 1:
        fail("--top must be at least 1")
    log_kind: LogKind = kind.value  # type: ignore[assignment]
    with local_services(config, data_dir, database_url) as services:
        rows = services.audit.query(registry_named(services, registry_name), log_kind, wanted, top)
    if output is LogOutput.json:
        typer.echo(orjson.dumps(rows).decode())
    elif output is LogOutput.jsonl:
        for row in rows:
            typer.echo(orjson.dumps(row).decode())
    else:
        columns = _TABLE_COLUMNS[kind.value]
        table = Table(*columns)
        for row in rows:
            table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
        console.print(table)


def register(app: typer.Typer) -> None:
    logs = typer.Typer(no_args_is_help=True, help="The audit log: repository and login events.")
    logs.command("query")(query)
    app.add_typer(logs, name="logs")
