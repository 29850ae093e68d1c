"""Mirroring as a `Feature`: its verbs, `dockyard import`, `dockyard cache` and
`dockyard credential-set` (all through the management API, which serves its resources
and importImage)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import cache, imports

    cache.register(app)
    imports.register(app)


MIRRORING = Feature("mirroring", cli=_cli)
