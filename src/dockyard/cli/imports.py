"""`dockyard import`, as `az acr import`: an image (every platform of an index) copied
into a registry by the server, through its management API's importImage
(cli/management.py), never its database. The verb follows the long-running operation,
drawing the bytes it reports copied, then prints what it did."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
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

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command, progress_console

RegistryName = Annotated[
    str,
    typer.Option(
        "--name",
        "-n",
        help="The registry to import into (or its login server).",
        show_default=False,
    ),
]


class _Bar:
    """The operation's progress in bytes, on a terminal's stderr only: `watch` reads each
    202 the poll gets."""

    def __init__(self, description: str) -> None:
        self.display = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=progress_console,
            transient=True,  # the summary follows
            disable=not progress_console.is_terminal,
        )
        self._task = self.display.add_task(description, total=None)

    def watch(self, response: httpx.Response) -> None:
        try:
            properties = response.json().get("properties") or {}
        except ValueError:
            return
        total = properties.get("bytesTotal") or None
        self.display.update(self._task, total=total, completed=properties.get("bytesCopied", 0))


def _registry_of(source: str) -> tuple[str | None, str]:
    """(registry, image) as docker reads a name: the first component is a registry when
    it looks like a host (a dot, a port, or `localhost`). The server checks both."""
    first, slash, rest = source.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, source


def _targets(image: str, tags: list[str], repositories: list[str]) -> dict[str, list[str]]:
    """importImage's targets; with none given, the source's repository and tag (ACR's),
    or, for an image named by digest, its repository with no tag."""
    if not tags and not repositories:
        repository, at, _ = image.partition("@")
        if at:
            repositories = [repository]
        else:
            tags = [image]
    targets: dict[str, list[str]] = {}
    if tags:
        targets["targetTags"] = tags
    if repositories:
        targets["untaggedTargetRepositories"] = repositories
    return targets


def _summary(source: str, registry: str, properties: dict[str, Any]) -> str:
    return (
        f"imported {source} into {registry} as {', '.join(properties.get('targets', []))} "
        f"({properties.get('digest')}): {properties.get('manifests')} manifest(s), "
        f"{properties.get('blobsCopied')} blob(s) copied "
        f"({decimal(properties.get('bytesCopied', 0))}), "
        f"{properties.get('blobsLinked')} linked without copying"
    )


def import_image(
    api: Management,
    name: RegistryName,
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="The image: REGISTRY/REPOSITORY:TAG or REGISTRY/REPOSITORY@DIGEST from any "
            "registry; REPOSITORY:TAG with --registry, or alone for the target registry.",
            show_default=False,
        ),
    ],
    image: Annotated[
        list[str] | None,
        typer.Option(
            "--image",
            "-t",
            metavar="REPOSITORY:TAG",
            help="Target REPOSITORY:TAG (repeatable; default: the source's repository and tag).",
        ),
    ] = None,
    repository: Annotated[
        list[str] | None,
        typer.Option(
            "--repository",
            metavar="REPOSITORY",
            help="Target repository to import into by digest only (repeatable).",
        ),
    ] = None,
    source_registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            "-r",
            help="The source registry, a registry of this server (name or login server).",
        ),
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
        bool, typer.Option("--force", help="Move a target tag that names another image.")
    ] = False,
) -> None:
    """Import an image (every platform of an index) into a registry, as az acr import.

    The server copies it: from any registry (with --username/--password if it needs a
    login), or from a registry of this server, which you must be able to pull from;
    within a registry blobs are linked, not copied. An existing tag that names another
    image is moved only with --force.
    """
    if (username is None) != (password is None):
        fail("--username and --password go together")
    registry, found = (None, source) if source_registry else _registry_of(source)
    body: dict[str, Any] = {
        "source": {"sourceImage": found},
        "mode": "Force" if force else "NoForce",
        **_targets(found, image or [], repository or []),
    }
    if registry is not None:
        body["source"]["registryUri"] = registry
    else:
        body["source"]["resourceId"] = api.registry_url(source_registry or name)
    if username is not None:
        body["source"]["credentials"] = {"username": username, "password": password}
    bar = _Bar(f"{source} → {name}")
    with bar.display:
        done = api.call("POST", f"{api.registry_url(name)}/importImage", watch=bar.watch, json=body)
    console.print(_summary(source, name, (done or {}).get("properties", {})), soft_wrap=True)


def register(app: typer.Typer) -> None:
    command(app, "import", rich_help_panel=ONLINE)(import_image)
