"""Fixtures shared by every test tree: the real servers the scale-out backends need,
and the order tests run in.

Test files with a `slow` test run first (`pytest_collection_modifyitems`). `postgres`
starts one PostgreSQL cluster per test session (per worker under pytest-xdist), on first
use, and stops it at the end; each test asks it for a fresh database
(`postgres.create_database()`). `seaweedfs` starts one SeaweedFS (S3 gateway) the same
way; each test asks it for a fresh bucket (`seaweedfs.create_bucket()`). `softhsm` makes
SoftHSM2 tokens (a PKCS#11 HSM) once per test session the same way; each test makes key
objects of its own labels (`softhsm.generate_key()`).

The in-process tests of every package (`tests/<package>/test_<module>.py`, mirroring
`src/dockyard/<package>/<module>.py`) share the rest: `clock` (a `FakeClock` the test
moves, tests/fake_clock.py), `meta` (a SQLite `Metadata` in the test's temporary
directory, a copy of `migrated_sqlite`), `stores` (filesystem blob stores beside it),
`registry` (one registry in `meta`), and `make_services` (services built as `dockyard
serve` builds them, on a data directory of the test's own, closed when the test ends).
A directory's own conftest.py or test file may define a fixture of the same name for
its tests (`tests/contract/`: `meta` on every database kind, `clock` at a fixed
instant)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from databases import copy_database, migrated
from fake_clock import FakeClock
from postgres import PostgresServer
from seaweedfs import SeaweedFS
from softhsm import SoftHSM

from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings
from dockyard.storage.stores import BlobStores


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


@pytest.fixture(scope="session")
def softhsm() -> Iterator[SoftHSM]:
    hsm = SoftHSM().start()
    try:
        yield hsm
    finally:
        hsm.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite database at the schema's head, migrated once per session (per
    worker): a test copies it (`databases.copy_database`) instead of running the
    migrations, which were most of an in-process test's set-up.
    tests/contract/test_metadata.py still builds the schema from nothing on every kind
    of database."""
    return migrated(tmp_path_factory.mktemp("schema") / "head.db")


@pytest.fixture
def meta(tmp_path: Path, clock: FakeClock, migrated_sqlite: Path) -> Iterator[Metadata]:
    copy_database(migrated_sqlite, tmp_path / "metadata.db")
    metadata = Metadata(f"sqlite:///{tmp_path / 'metadata.db'}", clock)
    yield metadata
    metadata.close()


@pytest.fixture
def stores(tmp_path: Path) -> BlobStores:
    return BlobStores(tmp_path / "blobs")


@pytest.fixture
def registry(meta: Metadata) -> RegistryRecord:
    with meta.transaction() as tx:
        return tx.create_registry("contoso", "contoso.registry.example")


@pytest.fixture
def make_services(tmp_path: Path, migrated_sqlite: Path) -> Iterator[Callable[..., Services]]:
    """`make_services(clock=None, **settings)`: `load_settings` with these settings (over
    the test's data directory, whose database starts as a copy of `migrated_sqlite`),
    `prepare`, `build_services` (with `clock` if given)."""
    built: list[Services] = []

    def make(clock: FakeClock | None = None, **settings: Any) -> Services:
        loaded = load_settings(None, data_dir=tmp_path, **settings)
        database = loaded.data_dir / "dockyard.db"
        if loaded.metadata.url is None and not database.exists():
            copy_database(migrated_sqlite, database)
        prepare(loaded)
        built.append(build_services(loaded) if clock is None else build_services(loaded, clock))
        return built[-1]

    yield make
    for services in built:
        services.close()
