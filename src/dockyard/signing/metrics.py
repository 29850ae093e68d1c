"""The trust policy's decisions on `/metrics`: `dockyard_trust_policy_pulls_total`, the
pulls a trust policy refused, or let through with a log line (audit, or permissive with
an expiry), by registry, policy, level and decision. `Trust.check_pull` only counts in
memory; this recorder moves the counts into prometheus-client's values when the server
flushes its recorders, so no pull writes a metric file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter

if TYPE_CHECKING:
    from starlette.types import Scope

    from dockyard.common.request_context import RequestInfo
    from dockyard.signing.trust import Trust


class TrustDecisions:
    """A `RequestRecorder` that records nothing per request and publishes at flush."""

    def __init__(self, trust: Trust, metrics: CollectorRegistry) -> None:
        self._trust = trust
        self._pulls = Counter(
            "dockyard_trust_policy_pulls",
            "Pulls a trust policy refused or let through with a log line, by registry, "
            "policy, level and decision (refused, logged)",
            ["registry", "policy", "level", "decision"],
            registry=metrics,
        )

    def record(
        self,
        scope: Scope,
        info: RequestInfo,
        status: int,
        headers: list[tuple[bytes, bytes]],
        bytes_out: int,
        seconds: float,
    ) -> None:
        return None

    def flush(self) -> None:
        for labels, count in self._trust.take_decisions().items():
            self._pulls.labels(*labels).inc(count)
