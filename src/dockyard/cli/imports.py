"""`dockyard import`: ACR's `az acr import` run on the server's database and storage
(`core.imports` does the work; this shows its progress and outcome)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated

import typer
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

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

if TYPE_CHECKING:
    from dockyard.core.imports import ImageReference, ImportResult


class _Bar:
    """`core.imports.Progress` drawn with Rich, in bytes (on a terminal only)."""

    def __init__(self, description: str) -> None:
        self.display = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,  # the summary follows
            disable=not console.is_terminal,
        )
        self._task = self.display.add_task(description, total=None)

    def planned(self, size: int) -> None:
        self.display.update(self._task, total=size)

    def moved(self, size: int) -> None:
        self.display.advance(self._task, size)


def _target(image: str | None, source: ImageReference) -> tuple[str, str | None]:
    """`--image REPO[:TAG]`; by default the source's repository and tag (ACR's)."""
    from dockyard.core.imports import parse_image

    if image is None:
        return source.repository, source.tag
    target = parse_image(image, default_tag=None)
    if target.registry is not None or target.digest is not None:
        raise typer.BadParameter("--image is REPOSITORY[:TAG] in the target registry")
    return target.repository, target.tag if target.tag is not None else source.tag


def _summary(source: ImageReference, repository: str, tag: str | None, r: ImportResult) -> str:
    target = f"{repository}:{tag}" if tag else f"{repository}@{r.digest}"
    return (
        f"imported {source} as {target} ({r.digest}): {r.manifests} manifest(s), "
        f"{r.blobs_copied} blob(s) copied ({decimal(r.bytes_copied)}), "
        f"{r.blobs_linked} linked without copying"
    )


def import_image(
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@DIGEST; without REGISTRY, "
            "or with one of this server's login servers, the copy is local.",
        ),
    ],
    image: Annotated[
        str | None,
        typer.Option("--image", "-t", help="Target REPOSITORY[:TAG] (default: the source's)."),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="User name at the source registry.")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            "-p",
            envvar="DOCKYARD_IMPORT_PASSWORD",
            help="Password or token at the source registry (or DOCKYARD_IMPORT_PASSWORD).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Move the target tag if it names another image.")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Fall back to plain HTTP if the source registry does not speak HTTPS "
            "(loopback sources always may).",
        ),
    ] = False,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Copy an image (every platform of an index) into a registry of this server.

    From another registry (any OCI registry, with --username/--password if it needs a
    login), or from a repository of this server: within a registry blobs are linked, not
    copied. An existing tag that names another image is moved only with --force.
    """
    from dockyard.core.errors import RegistryError
    from dockyard.core.imports import Reader, parse_image
    from dockyard.core.upstream import Credentials

    if (username is None) != (password is None):
        fail("--username and --password go together")
    try:
        parsed = parse_image(source)
        repository, tag = _target(image, parsed)
    except RegistryError as exc:
        fail(exc.message)
        raise AssertionError from exc
    credentials = None if username is None else Credentials(username, password or "")
    with local_services(config, data_dir, database_url) as services:
        registry = registry_named(services, registry_name)
        bar = _Bar(f"{parsed} → {repository}")
        try:
            with bar.display:
                result = asyncio.run(
                    services.importer.run(
                        registry,
                        parsed,
                        repository,
                        tag,
                        reader=Reader(None),
                        credentials=credentials,
                        force=force,
                        insecure=insecure,
                        progress=bar,
                    )
                )
        except RegistryError as exc:
            fail(exc.message)
            raise AssertionError from exc
        except OSError as exc:
            fail(f"storage: {exc}")
    console.print(_summary(parsed, repository, tag, result), soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("import", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)(import_image)
