"""`dockyard key create|rotate`: key files in the node's key directory, each version a
file of its own that only the owner reads; the versions the local provider then uses."""

from __future__ import annotations

import stat
from pathlib import Path

from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.encryption.local_keys import LocalKeyProvider


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
