"""`dockyard gc` on a server's database and storage: dry run, grace, table and JSON."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dockyard.cli.garbage import parse_duration
from dockyard.cli.local import local_services
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


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


def push_blob(data_dir: Path, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with local_services(None, data_dir, None) as services:
        registry = services.registries.for_host("")
        asyncio.run(services.uploads.upload_whole(registry, "app", digest, _body(data)))
        return services.stores.for_registry(registry.name).local_path(digest)


def test_gc_reports_removes_and_respects_the_grace(data_dir: Path) -> None:
    path = push_blob(data_dir, b"an unreferenced blob")
    assert json.loads(run(data_dir, "gc", "-o", "json")) == {
        "links": 0,
        "blobs": 0,
        "bytes": 0,
        "uploads": 0,
        "dry_run": False,
    }  # within the default grace (24 h)
    dry = json.loads(run(data_dir, "gc", "--grace", "0", "--dry-run", "-o", "json"))
    assert (dry["links"], dry["blobs"], dry["bytes"], dry["dry_run"]) == (1, 1, 20, True)
    assert path.exists()
    table = run(data_dir, "gc", "--grace", "0s", "--registry", "dockyard")
    assert "removed" in table and "20" in table
    assert not path.exists()
    assert "no registry named 'nope'" in run(data_dir, "gc", "--registry", "nope", code=1)
    assert "expected a duration" in run(data_dir, "gc", "--grace", "soon", code=2)


def test_durations() -> None:
    assert parse_duration("0").total_seconds() == 0
    assert parse_duration("90").total_seconds() == 90
    assert parse_duration("1h30m").total_seconds() == 5400
    assert parse_duration("7d").total_seconds() == 7 * 86400
