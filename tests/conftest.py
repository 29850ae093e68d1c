"""Fixtures shared by every test tree: the real servers the scale-out backends need,
and the order tests run in.

Test files with a `slow` test run first (`pytest_collection_modifyitems`). `postgres`
starts one PostgreSQL cluster per test session (per worker under pytest-xdist), on first
use, and stops it at the end; each test asks it for a fresh database
(`postgres.create_database()`). `seaweedfs` starts one SeaweedFS (S3 gateway) the same
way; each test asks it for a fresh bucket (`seaweedfs.create_bucket()`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres import PostgresServer
from seaweedfs import SeaweedFS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Files with a `slow` test first, each file's order kept: `make test` hands whole files
    to its workers in this order, so the longest start first and end with the rest."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


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
