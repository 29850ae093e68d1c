"""The management API in process: a server whose logins are off, for tests of what ARM
answers rather than who may ask (the default registry's path: `management_paths.py`)."""

from __future__ import annotations

import pytest

from dockyard.services import Services


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
