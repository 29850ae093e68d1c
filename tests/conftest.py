"""Fixtures shared by every test tree: the real servers the scale-out backends need.

`postgres` starts one PostgreSQL cluster per test session, on first use, and stops it at
the end; each test asks it for a fresh database (`postgres.create_database()`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres import PostgresServer


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()
