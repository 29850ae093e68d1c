"""Backends under contract: one factory per backend, one fixture per seam.

Adding a backend is one line in `BLOB_STORES` or `METADATA_DATABASES` (plus its factory):
every test in `test_blobstore.py` or `test_metadata.py` then runs against it too. A
factory gets the pytest request (to reach session fixtures, e.g. a server it needs) and a
fresh temporary directory, and returns an empty store, or the URL of an empty database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from databases import copy_database
from fake_clock import FakeClock
from keyrings import FixedKeyring

from dockyard.metadata.store import Metadata
from dockyard.storage.base import BlobStore
from dockyard.storage.encrypted import EncryptedBlobStore
from dockyard.storage.filesystem import FilesystemBlobStore
from dockyard.storage.s3 import S3BlobStore


def filesystem_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return FilesystemBlobStore(tmp_path / "store")


def sqlite_database(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> str:
    path = tmp_path / "metadata.db"
    if migrated:
        copy_database(request.getfixturevalue("migrated_sqlite"), path)
    return f"sqlite:///{path}"


def postgresql_database(request: pytest.FixtureRequest, tmp_path: Path, migrated: bool) -> str:
    return request.getfixturevalue("postgres").create_database("contract", migrated)


def s3_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    seaweedfs = request.getfixturevalue("seaweedfs")
    return S3BlobStore(seaweedfs.client(), seaweedfs.create_bucket("contract"), "registry")


def encrypted_filesystem_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return EncryptedBlobStore(filesystem_store(request, tmp_path), FixedKeyring())


def encrypted_s3_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return EncryptedBlobStore(s3_store(request, tmp_path), FixedKeyring())


BLOB_STORES: dict[str, Callable[[pytest.FixtureRequest, Path], BlobStore]] = {
    "filesystem": filesystem_store,
    "s3": s3_store,
    "encrypted-filesystem": encrypted_filesystem_store,
    "encrypted-s3": encrypted_s3_store,
}

METADATA_DATABASES: dict[str, Callable[[pytest.FixtureRequest, Path, bool], str]] = {
    "sqlite": sqlite_database,
    "postgresql": postgresql_database,
}


@pytest.fixture(params=list(BLOB_STORES))
def blobstore(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    return BLOB_STORES[request.param](request, tmp_path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC))


@pytest.fixture(params=list(METADATA_DATABASES))
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a database of each kind whose schema the Alembic migrations built: a
    copy of one they built once per session (`migrated_sqlite`,
    `postgres.create_database(migrated=True)`)."""
    return METADATA_DATABASES[request.param](request, tmp_path, True)


@pytest.fixture(params=list(METADATA_DATABASES))
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database of each kind, with no schema yet."""
    return METADATA_DATABASES[request.param](request, tmp_path, False)


@pytest.fixture
def meta(database_url: str, clock: FakeClock) -> Iterator[Metadata]:
    """A `Metadata` on the test's `database_url`."""
    metadata = Metadata(database_url, clock)
    yield metadata
    metadata.close()
