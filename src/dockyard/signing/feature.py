"""Signatures and trust policy as a `Feature`: its services, `Trust` (a registry's trust
policy and stores, the verdicts) on `Signatures` (finding and reading a manifest's
Notation and cosign signatures), its pull policy (`Trust.check_pull`), and the
`dockyard trust` and `dockyard sign` verbs, and its decisions on `/metrics`. The
management API shows and changes the policy as the registry's ARM
`policies.trustPolicy`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer
    from prometheus_client import CollectorRegistry

    from dockyard.core.policies import PullPolicy
    from dockyard.feature import RequestRecorder
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.signing.signatures import Signatures
    from dockyard.signing.trust import Trust

    signatures = Signatures(services.meta, services.stores)
    return {"trust": Trust(services.meta, signatures, services.clock)}


def _pull_policies(services: Services) -> Sequence[PullPolicy]:
    return [services.trust]


def _recorders(services: Services, metrics: CollectorRegistry | None) -> Sequence[RequestRecorder]:
    if metrics is None:
        return []
    from dockyard.signing.metrics import TrustDecisions

    return [TrustDecisions(services.trust, metrics)]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import signing

    signing.register(app)


SIGNING = Feature(
    "signing",
    services=_services,
    pull_policies=_pull_policies,
    recorders=_recorders,
    cli=_cli,
)
