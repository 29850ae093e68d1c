"""SQLite databases for tests, copied rather than built: the migrations run once per
session (`migrated_sqlite` in tests/conftest.py), each test starts from a copy."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from dockyard.metadata import migrate
from dockyard.metadata.engine import make_engine


def migrated(path: Path) -> Path:
    """An empty SQLite database at the schema's head, made at `path` by the migrations."""
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()
    return path


def copy_database(template: Path, target: Path) -> None:
    """`template` (a SQLite database) as `target`, page for page (SQLite's backup API:
    whole, whatever its write-ahead log still holds)."""
    with (
        contextlib.closing(sqlite3.connect(template)) as source,
        contextlib.closing(sqlite3.connect(target)) as copy,
    ):
        source.backup(copy)
