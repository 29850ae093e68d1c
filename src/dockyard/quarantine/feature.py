"""Quarantine as a `Feature`: its service, `Quarantine` (`quarantine.states`), which is
also its pull policy (quarantined manifests refused to all but quarantine readers) and
its push hold (no `push` webhook for them until they pass), and `dockyard config
quarantine`. The management API shows and changes the policy as the registry's
`policies.quarantinePolicy`; `/acr/v1` shows and sets a manifest's `quarantineState`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer

    from dockyard.core.policies import PullPolicy, PushHold
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.quarantine.states import Quarantine

    return {"quarantine": Quarantine(services.meta, services.logins)}


def _pulls(services: Services) -> Sequence[PullPolicy]:
    return [services.quarantine]


def _holds(services: Services) -> Sequence[PushHold]:
    return [services.quarantine]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import quarantine

    quarantine.register()


QUARANTINE = Feature(
    "quarantine",
    services=_services,
    pull_policies=_pulls,
    push_holds=_holds,
    cli=_cli,
)
