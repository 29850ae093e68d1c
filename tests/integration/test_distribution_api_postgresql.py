"""Every test of `test_distribution_api.py`, against a server whose metadata lives in
PostgreSQL: the same raw HTTP, the same expected answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import RegistryServer
from test_distribution_api import *  # noqa: F403  (the tests to run again)

from dockyard.metadata import migrate
from dockyard.metadata.engine import make_engine


@pytest.fixture(scope="module")
def registry(postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One server per module, as in conftest, on its own PostgreSQL database."""
    url = postgres.create_database("distribution")
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    base = tmp_path_factory.mktemp("registry-postgresql")
    with RegistryServer(
        base / "data", base / "dockyard.log", args=("--no-auth", "--database-url", url)
    ).start() as server:
        yield server
    assert not (base / "data" / "dockyard.db").exists(), "the server used SQLite"
