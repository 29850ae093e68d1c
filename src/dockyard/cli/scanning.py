"""`dockyard vulndb import|status`: the vulnerability database from OSV export files
(air-gapped: files only); `dockyard scan show|run|config|policy`: a manifest's
findings, a scan now, scan on push and the vulnerability pull policy of a registry.
All offline, on the server's database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

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
    run_for_registry,
)

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord
    from dockyard.metadata.scanning import PolicyRow
    from dockyard.services import Services

vulndb = typer.Typer(no_args_is_help=True, help="The vulnerability database (OSV exports).")
scan = typer.Typer(no_args_is_help=True, help="Vulnerability scans and the pull policy.")

ImageArgument = Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST.")]


def _image(image: str) -> tuple[str, str]:
    if "@" in image:
        repo, _, reference = image.partition("@")
    else:
        repo, colon, reference = image.rpartition(":")
        if not colon or "/" in reference:
            repo, reference = image, "latest"
    if not repo or not reference:
        fail(f"{image!r} is not REPOSITORY:TAG or REPOSITORY@DIGEST")
    return repo, reference


@vulndb.command("import", epilog=OFFLINE_EPILOG)
def import_files(
    files: Annotated[
        list[Path],
        typer.Argument(help="OSV export files: all.zip of an ecosystem, or JSON records."),
    ],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Import advisories: new ones added, newer versions (by `modified`) replacing older,
    withdrawn ones removed; importing a file again changes nothing. Images scanned
    before are scanned again in the background."""
    from dockyard.common.errors import RegistryError
    from dockyard.metadata.scanning import database_state

    with local_services(config, data_dir, database_url) as services:
        try:
            counts = services.vuln_db.import_files(files)
        except RegistryError as error:
            fail(error.message)
        advisories, packages, _ = database_state(services.meta)
    console.print(
        f"read {counts.read} records: {counts.added} added, {counts.replaced} replaced, "
        f"{counts.unchanged} unchanged, {counts.withdrawn} withdrawn; "
        f"{counts.packages} affected packages written. "
        f"The database holds {advisories} advisories ({packages} affected packages).",
        soft_wrap=True,
    )


@vulndb.command("status", epilog=OFFLINE_EPILOG)
def status(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """How many advisories are stored and when the database last changed."""
    from dockyard.metadata.scanning import database_state

    with local_services(config, data_dir, database_url) as services:
        advisories, packages, changed = database_state(services.meta)
    when = changed.isoformat() if changed else "never"
    console.print(f"{advisories} advisories, {packages} affected packages, changed {when}")


@scan.command("show", epilog=OFFLINE_EPILOG)
def show(
    image: ImageArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """A manifest's latest findings, worst first."""
    repo, reference = _image(image)

    def action(services: Services, record: RegistryRecord) -> None:
        from dockyard.scanning.api import scan_shape
        from dockyard.scanning.scanner import latest_scan

        shown = scan_shape(
            record.login_server, repo, latest_scan(services.meta, record, repo, reference)
        )
        _print_scan(shown, as_json)

    run_for_registry(registry, config, data_dir, database_url, action)


def _print_scan(shown: dict, as_json: bool) -> None:
    import orjson
    from rich.table import Table

    if as_json:
        console.print_json(orjson.dumps(shown).decode())
        return
    if shown["status"] != "scanned":
        console.print(f"{shown['imageName']}@{shown['digest']}: not scanned")
        return
    counts = ", ".join(f"{n} {word}" for word, n in shown["counts"].items() if n)
    console.print(
        f"{shown['imageName']}@{shown['digest']}: worst {shown['worst']}"
        f" ({counts or 'no findings'}), scanned {shown['scannedAt']}",
        soft_wrap=True,
    )
    if not shown["findings"]:
        return
    table = Table()
    for header in ("SEVERITY", "ADVISORY", "ALIASES", "PACKAGE", "INSTALLED", "FIXED"):
        table.add_column(header, overflow="fold")  # a narrow terminal loses no character
    for finding in shown["findings"]:
        table.add_row(
            finding["severity"],
            finding["advisory"],
            " ".join(finding["aliases"]),
            finding["package"],
            finding["installed"],
            finding["fixed"] or "",
        )
    console.print(table)


@scan.command("run", epilog=OFFLINE_EPILOG)
def run(
    image: ImageArgument,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Scan an image now and show its findings."""
    repo, reference = _image(image)

    def action(services: Services, record: RegistryRecord) -> None:
        from dockyard.scanning.api import scan_shape
        from dockyard.scanning.scanner import latest_scan

        digest = latest_scan(services.meta, record, repo, reference).digest
        if services.scanner.scan(record, repo, digest) is None:
            fail(f"{repo}@{digest} is not an image that can be scanned (an index or artifact)")
        _print_scan(
            scan_shape(record.login_server, repo, latest_scan(services.meta, record, repo, digest)),
            False,
        )

    run_for_registry(registry, config, data_dir, database_url, action)


def _print_policy(policy: PolicyRow) -> None:
    console.print(
        f"scan on push: {'on' if policy.scan_on_push else 'off'}; quarantine writer: "
        f"{'on' if policy.quarantine_writer else 'off'}; pull policy: "
        + (
            f"refuses {policy.block_severity} or worse"
            if policy.block_enabled
            else f"off (severity {policy.block_severity})"
        )
        + f"; allowlist: {', '.join(policy.allowlist) or 'none'}"
        + f"; repositories: {', '.join(policy.repositories) or 'all'}",
        soft_wrap=True,
    )


@scan.command("config", epilog=OFFLINE_EPILOG)
def configure(
    on_push: Annotated[
        bool | None, typer.Option("--on-push/--no-on-push", help="Scan every image pushed.")
    ] = None,
    quarantine_writer: Annotated[
        bool | None,
        typer.Option(
            "--quarantine-writer/--no-quarantine-writer",
            help="With quarantine on, each scan passes or fails its image by the pull "
            "policy's severity and allowlist.",
        ),
    ] = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show or change whether the registry scans on push, and whether its scans decide
    the quarantine state of what they scan."""
    with local_services(config, data_dir, database_url) as services:
        record = registry_named(services, registry)
        if on_push is None and quarantine_writer is None:
            _print_policy(services.scan_policies.current(record.id))
        else:
            _print_policy(
                services.scan_policies.update(
                    record, scan_on_push=on_push, quarantine_writer=quarantine_writer
                )
            )


@scan.command("policy", epilog=OFFLINE_EPILOG)
def policy(
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Refuse pulls of vulnerable images."),
    ] = None,
    severity: Annotated[
        str | None,
        typer.Option(help="Refuse at or above: unknown, low, medium, high, critical."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(help="An advisory id or alias never refused (repeat; replaces the list)."),
    ] = None,
    clear_allowlist: Annotated[bool, typer.Option(help="Empty the allowlist.")] = False,
    repository: Annotated[
        list[str] | None,
        typer.Option(help="A repository pattern (* ? [..]) the policy covers (repeat)."),
    ] = None,
    all_repositories: Annotated[bool, typer.Option(help="Cover every repository again.")] = False,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Show or change the vulnerability pull policy."""
    from dockyard.common.errors import RegistryError

    with local_services(config, data_dir, database_url) as services:
        record = registry_named(services, registry)
        try:
            changed = services.scan_policies.update(
                record,
                block_enabled=enabled,
                block_severity=severity,
                allowlist=[] if clear_allowlist else allow,
                repositories=[] if all_repositories else repository,
            )
        except RegistryError as error:
            fail(error.message)
        _print_policy(changed)


def register(app: typer.Typer) -> None:
    app.add_typer(vulndb, name="vulndb", rich_help_panel=OFFLINE)
    app.add_typer(scan, name="scan", rich_help_panel=OFFLINE)
