"""The API's in-process tests: services built as `dockyard serve` builds them, on a data
directory of the test's own, and closed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings


@pytest.fixture
def make_services(tmp_path: Path) -> Iterator[Callable[..., Services]]:
    """`make_services(**settings)`: `load_settings` with these settings (over the test's
    data directory), `prepare`, `build_services`."""
    built: list[Services] = []

    def make(**settings: Any) -> Services:
        loaded = load_settings(None, data_dir=tmp_path, **settings)
        prepare(loaded)
        built.append(build_services(loaded))
        return built[-1]

    yield make
    for services in built:
        services.close()
