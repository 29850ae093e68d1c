"""Core services on real collaborators: a SQLite `Metadata` built by the migrations in a
temporary directory, filesystem blob stores beside it, and a clock the test moves."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dockyard.metadata import migrate
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores


class FakeClock:
    """Stands still until a test moves it. Starts at the real time, so that file
    modification times (which only the real clock sets) compare sensibly with it."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        self.now += delta
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def meta(tmp_path: Path, clock: FakeClock) -> Iterator[Metadata]:
    metadata = Metadata(f"sqlite:///{tmp_path / 'metadata.db'}", clock)
    migrate.upgrade(metadata.engine)
    yield metadata
    metadata.close()


@pytest.fixture
def stores(tmp_path: Path) -> BlobStores:
    return BlobStores(tmp_path / "blobs")


@pytest.fixture
def registry(meta: Metadata) -> RegistryRecord:
    with meta.transaction() as tx:
        return tx.create_registry("contoso", "contoso.registry.example")
