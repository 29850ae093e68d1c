"""`dockyard purge` (`acr purge`'s options, run now on the server's database and storage
while it serves) and `dockyard purge-schedule add|list|remove` (the same purge run by
the background worker on a cron schedule)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from dockyard.cli.garbage import Output, parse_duration
from dockyard.cli.local import (
    OFFLINE,
    OFFLINE_EPILOG,
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    fail,
    local_services,
    registry_named,
)
from dockyard.common.errors import RequestInvalid

if TYPE_CHECKING:
    from dockyard.lifecycle.purge import PurgeItem, PurgeOptions, PurgeReport
    from dockyard.metadata.purge_schedules import PurgeSchedule

purge_schedule = typer.Typer(
    no_args_is_help=True, help="Purges the background worker runs on a cron schedule."
)

FilterOption = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="REPOSITORY-REGEX:TAG-REGEX, each matching whole names, e.g. 'hello-world:.*' "
        "or '.*/cache:^1\\..*'; repeatable.",
    ),
]
AgoOption = Annotated[
    str | None,
    typer.Option(
        help="Only what was last updated longer ago than this, e.g. 2d3h6m, 30m, 0 "
        "(required unless --untagged-only)."
    ),
]
UntaggedOption = Annotated[
    bool, typer.Option("--untagged", help="Also delete the manifests left without tags.")
]
UntaggedOnlyOption = Annotated[
    bool,
    typer.Option(
        "--untagged-only",
        help="Delete only manifests without tags (in every repository if no --filter).",
    ),
]
KeepOption = Annotated[
    int, typer.Option(help="Per repository, keep the N most recently updated matching tags.")
]


def _options(
    filters: list[str] | None, ago: str | None, untagged: bool, untagged_only: bool, keep: int
) -> PurgeOptions:
    from dockyard.lifecycle.purge import PurgeOptions, parse_filter

    if ago is None and not untagged_only:
        fail("give --ago (e.g. --ago 30d), or --untagged-only")
    try:
        return PurgeOptions(
            filters=tuple(parse_filter(text) for text in filters or ()),
            ago=parse_duration(ago or "0"),
            untagged=untagged,
            untagged_only=untagged_only,
            keep=keep,
        )
    except (RequestInvalid, typer.BadParameter) as exc:
        fail(exc.message if isinstance(exc, RequestInvalid) else str(exc))
        raise AssertionError from exc


def _item(item: PurgeItem) -> dict[str, Any]:
    shown: dict[str, Any] = {"repository": item.repository}
    if item.tag is not None:
        shown["tag"] = item.tag
    shown["digest"] = item.digest
    shown["lastUpdateTime"] = item.updated_at.isoformat()
    return shown


def _print_report(report: PurgeReport, dry_run: bool, output: Output) -> None:
    if output is Output.json:
        typer.echo(
            orjson.dumps(
                {
                    "dryRun": dry_run,
                    "deleted": [_item(item) for item in report.deleted],
                    "locked": [_item(item) for item in report.locked],
                }
            ).decode()
        )
        return
    for items, title in (
        (report.deleted, "would delete" if dry_run else "deleted"),
        (report.locked, "skipped: locked"),
    ):
        if not items and title.startswith("skipped"):
            continue
        table = Table("repository", "tag", "digest", "last updated", title=title)
        for item in items:
            table.add_row(
                item.repository,
                item.tag or "",
                item.digest,
                item.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
        console.print(table)
    tags = sum(item.tag is not None for item in report.deleted)
    console.print(
        f"{'would delete' if dry_run else 'deleted'} {tags} tags and "
        f"{len(report.deleted) - tags} manifests; {len(report.locked)} skipped (locked)"
    )


def purge(
    filters: FilterOption = None,
    ago: AgoOption = None,
    untagged: UntaggedOption = False,
    untagged_only: UntaggedOnlyOption = False,
    keep: KeepOption = 0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be deleted; delete nothing.")
    ] = False,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = (
        Output.table
    ),
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete tags (and untagged manifests) by name pattern and age, as `acr purge` does.

    Locked items (writeEnabled or deleteEnabled false) are skipped and listed. Blobs are
    freed by the next garbage collection.
    """
    options = _options(filters, ago, untagged, untagged_only, keep)
    with local_services(config, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        report = services.purge.run(registry, options, dry_run=dry_run)
    _print_report(report, dry_run, output)


def _schedule_row(schedule: PurgeSchedule) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "filters": list(schedule.filters),
        "agoSeconds": schedule.ago_seconds,
        "untagged": schedule.untagged,
        "untaggedOnly": schedule.untagged_only,
        "keep": schedule.keep,
        "nextRunTime": schedule.next_run_at.isoformat(),
        "lastRunTime": schedule.last_run_at.isoformat() if schedule.last_run_at else None,
        "lastResult": orjson.loads(schedule.last_result) if schedule.last_result else None,
    }


@purge_schedule.command("add")
def schedule_add(
    name: Annotated[str, typer.Argument(help="A name for the schedule.")],
    cron: Annotated[
        str, typer.Option(help="When to run, in UTC: five cron fields, e.g. '0 1 * * *'.")
    ],
    filters: FilterOption = None,
    ago: AgoOption = None,
    untagged: UntaggedOption = False,
    untagged_only: UntaggedOnlyOption = False,
    keep: KeepOption = 0,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Run a purge on a cron schedule (the background worker runs it)."""
    options = _options(filters, ago, untagged, untagged_only, keep)
    with local_services(config, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        try:
            schedule = services.purge_schedules.add(registry, name, cron, options)
        except RequestInvalid as exc:
            fail(exc.message)
            raise AssertionError from exc
    console.print(f"purge schedule {name} added; next run {schedule.next_run_at.isoformat()}")


@purge_schedule.command("list")
def schedule_list(
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = (
        Output.table
    ),
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """List the purge schedules, with their last result."""
    with local_services(config, data_dir, database_url) as services:
        found = services.purge_schedules.list(registry_named(services, registry_name))
    rows = [_schedule_row(schedule) for schedule in found]
    if output is Output.json:
        typer.echo(orjson.dumps(rows).decode())
        return
    table = Table(
        "name", "cron", "filters", "ago (s)", "untagged", "keep", "next run", "last result"
    )
    for row in rows:
        untagged = "only" if row["untaggedOnly"] else ("yes" if row["untagged"] else "no")
        table.add_row(
            row["name"],
            row["cron"],
            " ".join(row["filters"]),
            str(row["agoSeconds"]),
            untagged,
            str(row["keep"]),
            row["nextRunTime"],
            orjson.dumps(row["lastResult"]).decode() if row["lastResult"] else "",
        )
    console.print(table)


@purge_schedule.command("remove")
def schedule_remove(
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Remove a purge schedule."""
    with local_services(config, data_dir, database_url) as services:
        try:
            services.purge_schedules.remove(registry_named(services, registry_name), name)
        except RequestInvalid as exc:
            fail(exc.message)
    console.print(f"purge schedule {name} removed")


def register(app: typer.Typer) -> None:
    app.command("purge", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)(purge)
    app.add_typer(
        purge_schedule, name="purge-schedule", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG
    )
