"""`dockyard key create|rotate`: the key-encryption keys of `local:` identifiers, as key
files in the node's key directory (`[encryption] key_dir`, default DATA_DIR/keys). An
HSM's keys are made with the HSM's own tools."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dockyard.cli.local import (
    OFFLINE_EPILOG,
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    fail,
    run_for_registry,
)

if TYPE_CHECKING:
    from dockyard.encryption.local_keys import LocalKeyProvider
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services

keys = typer.Typer(
    no_args_is_help=True,
    help="Key-encryption keys in key files (local:NAME), for encryption at rest.",
)

KeyDirOption = Annotated[
    Path | None,
    typer.Option(help="The key directory (encryption.key_dir; default DATA_DIR/keys)."),
]


def _provider(config: Path | None, data_dir: Path | None, key_dir: Path | None) -> LocalKeyProvider:
    from dockyard.encryption.local_keys import LocalKeyProvider
    from dockyard.settings import load_settings

    overrides: dict[str, object] = {"data_dir": data_dir} if data_dir else {}
    if key_dir is not None:
        overrides["encryption"] = {"key_dir": key_dir}
    return LocalKeyProvider(load_settings(config, **overrides).key_root)


def _print_or_fail(make: Callable[[], str]) -> None:
    """Print the identifier `make` returns, or its refusal."""
    from dockyard.common.errors import RegistryError

    try:
        console.print(make(), soft_wrap=True)
    except RegistryError as error:
        fail(error.message)


@keys.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The key's name: local:NAME.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    key_dir: KeyDirOption = None,
) -> None:
    """Make a key and its first version; prints the versioned identifier."""
    _print_or_fail(lambda: _provider(config, data_dir, key_dir).create_key(name))


@keys.command("rotate")
def rotate(
    name: Annotated[str, typer.Argument(help="The key's name: local:NAME.")],
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    key_dir: KeyDirOption = None,
) -> None:
    """Add a new version of the key; registries that follow it (a key identifier without
    a version) rewrap their data keys with it in the next background round."""
    _print_or_fail(lambda: _provider(config, data_dir, key_dir).add_version(f"local:{name}"))


@keys.command("new-data-key", epilog=OFFLINE_EPILOG)
def new_data_key(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Give an encrypted registry a new data key: new blobs use it at once, and the
    background work rewrites every blob under the older keys, while pulls and pushes
    go on; prints the new key's id (never the key)."""

    def act(services: Services, record: RegistryRecord) -> None:
        console.print(services.registry_keys.new_data_key(record))

    run_for_registry(registry, config, data_dir, database_url, act)


def register(app: typer.Typer) -> None:
    app.add_typer(keys, name="key")
