"""The portal as a `Feature`: its pages, actions and static files under `/portal/`,
signed in and checked as the registry's APIs check a caller (`portal/access.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from dockyard.settings import Settings


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.portal.pages import Portal

    return Portal(settings.secret_key_path.read_bytes().strip(), settings.auth.oidc).routes()


PORTAL = Feature("portal", routes=_routes)
