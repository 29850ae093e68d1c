"""A real server on PostgreSQL: the schema gate of `dockyard serve`, `dockyard db
upgrade`, and a push and pull through the registry (the whole distribution API runs
on PostgreSQL in `test_distribution_api_postgresql.py`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import images
import pytest
from conftest import RegistryServer, run_cli


def db_upgrade(url: str) -> subprocess.CompletedProcess:
    return run_cli("db", "upgrade", "--database-url", url)


@pytest.mark.slow
def test_serve_refuses_an_outdated_schema_and_names_the_upgrade(postgres, tmp_path: Path):
    url = postgres.create_database("serve")
    server = RegistryServer(
        tmp_path / "data", tmp_path / "dockyard.log", args=("--no-auth", "--database-url", url)
    )
    with pytest.raises(RuntimeError, match="exited with 1") as refused:
        server.start()
    message = str(refused.value)
    assert "run `dockyard db upgrade`" in message
    assert "Traceback" not in message

    upgraded = db_upgrade(url)
    assert upgraded.returncode == 0, upgraded.stderr
    server.start()
    try:
        image = images.busybox_image()
        digest = server.push_image("pg/app", image, "v1")
        with server.client() as http:
            pulled = http.get("/v2/pg/app/manifests/v1", headers={"Accept": image.media_type})
            assert pulled.status_code == 200
            assert pulled.headers["Docker-Content-Digest"] == digest
            assert http.get("/v2/_catalog").json() == {"repositories": ["pg/app"]}
    finally:
        server.stop()
    assert not (tmp_path / "data" / "dockyard.db").exists()  # nothing went to SQLite
