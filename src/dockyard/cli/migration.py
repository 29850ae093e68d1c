"""`dockyard migrate --to-config`: move an installation (the server's own `--config`,
`--data-dir`, `--database-url`) to the database and storage another configuration names.
The work is `dockyard.migration`'s; this module shows its progress and its outcome."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from dockyard.cli.local import (
    OFFLINE,
    OFFLINE_EPILOG,
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    console,
    fail,
    offline_settings,
)

if TYPE_CHECKING:
    from dockyard.migration import Report
    from dockyard.settings import Settings


class _Amount(ProgressColumn):
    """Bytes for the blobs, a count for the rows."""

    _bytes, _count = DownloadColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        return (self._bytes if task.fields.get("bytes") else self._count).render(task)


class _Bars:
    """`dockyard.migration.Progress` drawn with Rich: one bar for the blobs' bytes, one
    for the metadata rows."""

    def __init__(self) -> None:
        self.display = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            _Amount(),
            TimeRemainingColumn(),
            console=console,
            transient=True,  # the summary follows
            disable=not console.is_terminal,
        )
        self._blobs: TaskID | None = None
        self._rows: TaskID | None = None

    def blobs_found(self, count: int, size: int) -> None:
        self._blobs = self.display.add_task(f"blobs ({count})", total=size, bytes=True)

    def blob_bytes(self, size: int) -> None:
        assert self._blobs is not None
        self.display.advance(self._blobs, size)

    def rows_found(self, count: int) -> None:
        self._rows = self.display.add_task("rows", total=count)

    def rows_copied(self, table: str, count: int) -> None:
        assert self._rows is not None
        self.display.advance(self._rows, count)


def _database(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.database_url).render_as_string(hide_password=True)


def _storage(settings: Settings) -> str:
    storage = settings.storage
    if storage.kind == "filesystem":
        return str(settings.blob_root)
    return f"S3 bucket {storage.bucket} at {storage.endpoint or 'AWS S3'}"


def _summary(report: Report, target: Settings, to_config: Path) -> None:
    verb = "would copy" if report.dry_run else "copied"
    if report.moves_blobs:
        console.print(
            f"blobs: {verb} {report.copied} ({decimal(report.copied_bytes)}), "
            f"{report.skipped} already in {_storage(target)}"
        )
    if report.rows:
        console.print(f"metadata: {verb} {sum(report.rows.values())} rows to {_database(target)}")
        table = Table("table", "rows")
        for name, count in sorted(report.rows.items()):
            table.add_row(name, str(count))
        console.print(table)
    if report.secret_key is not None:
        console.print(
            f"secret key: {report.secret_key} ({'to be ' if report.dry_run else ''}copied "
            "from the source). Every node of the new deployment needs this file "
            "(auth.secret_key_file): it seals the admin passwords and signing keys."
        )
    if not report.dry_run:
        console.print(f"done: start the new deployment with `dockyard serve --config {to_config}`")


def migrate_command(
    to_config: Annotated[
        Path,
        typer.Option(
            "--to-config",
            exists=True,
            dir_okay=False,
            help="Configuration of the deployment to move to (its metadata.url, storage.*).",
        ),
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be copied; change nothing.")
    ] = False,
    jobs: Annotated[int, typer.Option(min=1, max=64, help="Blobs copied at once.")] = 4,
) -> None:
    """Move this installation's metadata and blobs to the backends another configuration
    names (PostgreSQL, S3), verifying every blob's digest.

    Stop the server first. An interrupted run can simply be run again: what
    is copied already is skipped or updated, never duplicated. The target
    database must be empty, or filled by an earlier run of the same move."""
    from botocore.exceptions import BotoCoreError, ClientError
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from dockyard.metadata.transfer import TargetConflict
    from dockyard.migration import Migration, MigrationRefused
    from dockyard.settings import load_settings

    source = offline_settings(config, data_dir, database_url)
    try:
        target = load_settings(to_config)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        fail(f"{to_config}: {where}: {error['msg']}")
    bars = _Bars()
    try:
        migration = Migration(source, target)
        with bars.display:
            report = migration.run(bars, jobs=jobs, dry_run=dry_run)
    except (MigrationRefused, TargetConflict) as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:
        fail(f"database: {str(getattr(exc, 'orig', None) or exc).splitlines()[0]}")
    except (BotoCoreError, ClientError) as exc:
        fail(f"storage: {exc}")
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
    for failure in report.failures:
        console.print(
            f"[red]damaged:[/red] blob {failure.blob.digest} of registry "
            f"{failure.blob.registry}: {failure.reason}"
        )
    if report.failures:
        fail(
            f"{len(report.failures)} blob(s) failed verification and were not copied; no "
            "metadata was copied. Repair or delete them in the source, then run again "
            "(blobs already copied are kept)"
        )
    _summary(report, target, to_config)


def register(app: typer.Typer) -> None:
    app.command("migrate", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)(migrate_command)
