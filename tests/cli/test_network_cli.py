"""`dockyard network-rule` and `dockyard registry update` on a server's database."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.server import prepare
from dockyard.settings import load_settings


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    prepare(load_settings(None, data_dir=tmp_path / "data", auth={"enabled": False}))
    return tmp_path / "data"


def run(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return result.output


def test_rules_are_added_listed_and_removed(data_dir: Path) -> None:
    added = run(data_dir, "network-rule", "add", "127.0.0.2")
    assert "allowed: 127.0.0.2 (dockyard)" in added
    assert "--default-action Deny" in added  # rules do nothing under Allow: say so
    run(data_dir, "network-rule", "add", "2001:db8::/32", "--registry", "dockyard")
    assert "already allowed: 127.0.0.2" in run(data_dir, "network-rule", "add", "127.0.0.2/32")
    listing = run(data_dir, "network-rule", "list")
    assert "public network access enabled, default action Allow" in listing
    assert "127.0.0.2" in listing and "2001:db8::/32" in listing
    assert "removed: 127.0.0.2" in run(data_dir, "network-rule", "remove", "127.0.0.2")
    assert "127.0.0.2" not in run(data_dir, "network-rule", "list")
    missing = run(data_dir, "network-rule", "remove", "127.0.0.2", code=1)
    assert "has no rule 127.0.0.2" in missing


def test_bad_rules_and_registries_are_refused(data_dir: Path) -> None:
    assert "did you mean 10.0.0.0/24?" in run(
        data_dir, "network-rule", "add", "10.0.0.5/24", code=1
    )
    assert "not an IP address" in run(data_dir, "network-rule", "add", "nonsense", code=1)
    assert "no registry named 'nope'" in run(
        data_dir, "network-rule", "list", "--registry", "nope", code=1
    )


def test_registry_update(data_dir: Path) -> None:
    assert "nothing to change" in run(data_dir, "registry", "update", code=1)
    shown = run(
        data_dir,
        "registry",
        "update",
        "--default-action",
        "deny",
        "--public-network-access",
        "disabled",
    )
    assert "public network access disabled, default action Deny" in shown
    shown = run(data_dir, "registry", "update", "--public-network-access", "enabled")
    assert "public network access enabled, default action Deny" in shown
