"""`dockyard gc`: a garbage collection run on a server's database and storage, now,
while the server keeps serving (the same run the background worker makes every
`gc.interval_seconds`)."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import timedelta
from enum import StrEnum
from typing import Annotated

import orjson
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
    local_services,
    registry_named,
)

_DURATION = re.compile(r"(\d+)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class Output(StrEnum):
    table = "table"
    json = "json"


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `30m`, `24h`, `7d`, or several together (`1h30m`)."""
    text = text.strip().lower()
    parts = _DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise typer.BadParameter(f"expected a duration such as 30m, 24h or 0, got {text!r}")
    return timedelta(seconds=sum(int(number) * _UNITS[unit] for number, unit in parts))


def gc(
    registry_name: RegistryOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; remove nothing.")
    ] = False,
    grace: Annotated[
        str | None,
        typer.Option(
            help="Keep blobs pushed or left unreferenced less than this long ago, e.g. 30m, "
            "24h, 0 (default: gc.grace_seconds).",
        ),
    ] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = (
        Output.table
    ),
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Remove blobs no manifest references, and expired upload sessions.

    Blob links no manifest of their repository references go once older than the grace
    period, then blobs no repository links (rows and bytes). Without --registry every
    registry is collected and expired upload sessions are swept too. Safe while the
    server runs and pushes go on.
    """
    window = None if grace is None else parse_duration(grace)
    with local_services(config, data_dir, database_url) as services:
        settings = services.settings
        registry = None if registry_name is None else registry_named(services, registry_name)
        report = services.garbage.collect(
            timedelta(seconds=settings.gc.grace_seconds) if window is None else window,
            timedelta(seconds=settings.uploads.expiry_seconds),
            registry,
            dry_run=dry_run,
        )
    if output is Output.json:
        typer.echo(orjson.dumps({**asdict(report), "dry_run": dry_run}).decode())
        return
    table = Table(
        "links", "blobs", "bytes", "uploads", title="would remove" if dry_run else "removed"
    )
    table.add_row(*(str(value) for value in asdict(report).values()))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("gc", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)(gc)
