"""`dockyard identity create` on a server's database: what it prints."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.server import prepare
from dockyard.settings import load_settings


def test_identity_create_prints_what_az_login_takes(tmp_path: Path) -> None:
    """Client id, secret and tenant: `az login --service-principal -u -p --tenant`."""
    prepare(load_settings(None, data_dir=tmp_path))
    result = CliRunner().invoke(
        app,
        ["identity", "create", "ops", "--server-role", "Owner", "--data-dir", str(tmp_path)],
        env={"COLUMNS": "200", "DOCKYARD_MANAGEMENT__TENANT_ID": "contoso.example"},
    )
    assert result.exit_code == 0, result.output
    printed = dict(line.split(": ", 1) for line in result.output.splitlines() if ": " in line)
    assert set(printed) >= {"username", "secret", "tenant"}
    assert printed["tenant"] == "contoso.example"
