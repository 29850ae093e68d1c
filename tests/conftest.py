"""Fixtures shared by every test tree: the real servers the scale-out backends need.

`postgres` starts one PostgreSQL cluster per test session, on first use, and stops it at
the end; each test asks it for a fresh database (`postgres.create_database()`). `seaweedfs`
starts one SeaweedFS (S3 gateway) the same way; each test asks it for a fresh bucket
(`seaweedfs.create_bucket()`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres import PostgresServer
from seaweedfs import SeaweedFS


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    server = SeaweedFS().start()
    try:
        yield server
    finally:
        server.stop()
