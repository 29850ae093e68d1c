"""Engine construction: which driver a database URL gets."""

from __future__ import annotations

import pytest

from dockyard.metadata.engine import make_engine


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://dockyard@db.example/dockyard",
        "postgres://dockyard@db.example/dockyard",
        "postgresql+psycopg://dockyard@db.example/dockyard",
    ],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    engine = make_engine(url)  # connects lazily: no server needed
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
        assert engine.url.host == "db.example"
    finally:
        engine.dispose()


def test_sqlite_urls_are_left_alone(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert engine.dialect.name == "sqlite"
    finally:
        engine.dispose()
