"""`dockyard key create|rotate`: key files in the node's key directory, each version a
file of its own that only the owner reads; the versions the local provider then uses."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from dockyard.cli.local import local_services
from dockyard.cli.main import app
from dockyard.encryption.local_keys import LocalKeyProvider
from dockyard.server import prepare
from dockyard.settings import load_settings


def run(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output.strip()


def test_keys_are_created_and_rotated_in_the_data_directory(tmp_path: Path) -> None:
    first = run(tmp_path, "key", "create", "kek")
    second = run(tmp_path, "key", "rotate", "kek")
    provider = LocalKeyProvider(tmp_path / "keys")
    assert first.startswith("local:kek/") and second.startswith("local:kek/")
    assert provider.newest("local:kek") == second != first
    for path in (tmp_path / "keys" / "kek").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "exists" in run(tmp_path, "key", "create", "kek", code=1)
    assert "not found" in run(tmp_path, "key", "rotate", "absent", code=1)


def test_a_new_data_key_needs_an_encrypted_registry_then_prints_its_id(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path, auth={"enabled": False})
    prepare(settings)
    assert "is not encrypted" in run(tmp_path, "key", "new-data-key", code=1)
    run(tmp_path, "key", "create", "kek")
    with local_services(None, tmp_path, None) as services:
        services.registries.ensure_default("localhost:5000")
        services.registry_keys.enable(services.registries.for_host(""), "local:kek", None)
    key_id = run(tmp_path, "key", "new-data-key")
    with local_services(None, tmp_path, None) as services:
        record = services.registries.for_host("")
        assert services.registry_keys.current_data_key(record) == key_id
        assert len(services.registry_keys.older_data_keys(record)) == 1
