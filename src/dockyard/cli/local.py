"""Offline administration: the `dockyard` commands that administer the server itself,
directly on its database and storage, for want of a public API (identities, keys, gc,
purges, migrations, serve): they take the server's own `--config`, `--data-dir`
and `--database-url`. Also what every command shares: `fail` (one line, exit 1), the
console, and the help panels that tell online verbs (management.py, remote.py) from
offline ones.

Every `dockyard` command imports this module, so it imports nothing heavy at its top:
the server's services (SQLAlchemy, Alembic, pydantic-settings) load inside the
functions that open them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services
    from dockyard.settings import Settings

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.", exists=True)
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(help="This node's data directory (data_dir; default ./data)."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        help="SQLAlchemy URL of the metadata database (metadata.url; "
        "default SQLite in the data directory)."
    ),
]
RegistryOption = Annotated[
    str | None, typer.Option("--registry", "-r", help="Registry name (default: the default).")
]

console = Console()

# Where `dockyard --help` lists the verbs, and what the offline ones say in their help.
ONLINE = "Online: over the server's public APIs"
OFFLINE = "Offline: server administration"
OFFLINE_EPILOG = (
    "Offline: acts directly on the server's database and storage (its --config, "
    "--data-dir, --database-url); there is no public API for it yet."
)


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)  # one line, however long
    raise typer.Exit(1)


def offline_settings(
    config: Path | None, data_dir: Path | None, database_url: str | None
) -> Settings:
    """The server's settings, as an offline command's three options choose them."""
    from dockyard.settings import load_settings

    overrides: dict = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if database_url is not None:
        overrides["metadata"] = {"url": database_url}
    return load_settings(config, **overrides)


@contextmanager
def local_services(
    config: Path | None, data_dir: Path | None, database_url: str | None
) -> Iterator[Services]:
    """The server's services on its configured database, which must be up to date."""
    from dockyard.metadata import migrate
    from dockyard.metadata.engine import make_engine
    from dockyard.services import build_services

    settings = offline_settings(config, data_dir, database_url)
    engine = make_engine(settings.database_url)
    try:
        if not migrate.is_current(engine):
            fail(
                "the database is not set up or is out of date: start the server once, "
                "or run `dockyard db upgrade`"
            )
    finally:
        engine.dispose()
    services = build_services(settings)
    try:
        services.registries.ensure_default(
            settings.default_login_server, settings.registry.default_sku
        )
        yield services
    finally:
        services.close()


def registry_named(services: Services, name: str | None) -> RegistryRecord:
    if name is None:
        return services.registries.for_host("")
    for record in services.meta.registries():
        if record.name == name.lower():
            return record
    fail(f"no registry named {name!r}")
    raise AssertionError


def run_for_registry(
    registry_name: str | None,
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    action: Callable[[Services, RegistryRecord], None],
) -> None:
    """Run `action` on the named registry (default: the default) with the server's
    services; a refused change (a `RegistryError`) ends the command with its message."""
    from dockyard.common.errors import RegistryError

    with local_services(config, data_dir, database_url) as services:
        try:
            action(services, registry_named(services, registry_name))
        except RegistryError as exc:
            fail(exc.message)
