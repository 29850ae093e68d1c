"""The built-in scanner as ACR's quarantine writer: with a registry's `quarantinePolicy`
on and its scan policy's `quarantine_writer` switch on, every scan decides its image's
quarantine state, as an external scanner holding AcrQuarantineWriter would with its
PATCH: `Failed` when a finding reaches the vulnerability policy's severity and is not
allowlisted (`findings.worst_refused`, the rule the pull policy applies too), else
`Passed`, with `quarantineDetails` in ACR's schema (the scan's counts per severity)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import orjson

from dockyard.common.errors import RegistryError
from dockyard.metadata.records import RegistryRecord
from dockyard.quarantine.states import Quarantine
from dockyard.scanning.findings import Finding, worst, worst_refused
from dockyard.scanning.policy import ScanPolicies
from dockyard.scanning.severity import Severity

log = logging.getLogger(__name__)

SCANNER = "dockyard"
# ACR's schema names five severities, capitalized; the scan's "unknown" counts as None.
_ACR_SEVERITIES = ("Critical", "High", "Medium", "Low")


class ScannerAsQuarantineWriter:
    def __init__(self, quarantine: Quarantine, policies: ScanPolicies) -> None:
        self._quarantine = quarantine
        self._policies = policies

    def __call__(
        self, registry: RegistryRecord, repo: str, digest: str, findings: Sequence[Finding]
    ) -> None:
        """After a scan of `repo@digest`: its quarantine state, if the registry asks the
        scanner to write it (a failure is logged: the scan itself is stored)."""
        policy = self._policies.current(registry.id)
        if not policy.quarantine_writer or not self._quarantine.enabled(registry, fresh=True):
            return
        refused = worst_refused(findings, Severity.named(policy.block_severity), policy.allowlist)
        state = "Passed" if refused is None else "Failed"
        try:
            self._quarantine.set_state(registry, repo, digest, state, details(findings, refused))
        except RegistryError as error:
            log.warning("quarantine state of %s@%s not set: %s", repo, digest, error.message)


def details(findings: Sequence[Finding], refused: Finding | None) -> str:
    """`quarantineDetails` for a scan: ACR's schema, its summary the count per severity."""
    summary = [
        {"severity": word, "count": sum(1 for f in findings if f.severity.word == word.lower())}
        for word in _ACR_SEVERITIES
    ]
    summary.append(
        {"severity": "None", "count": sum(1 for f in findings if f.severity <= Severity.UNKNOWN)}
    )
    description = (
        f"{len(findings)} findings, the worst {worst(findings).word}"
        if refused is None
        else f"{refused.advisory} ({refused.severity.word}) in {refused.package} is not allowed"
    )
    return orjson.dumps(
        {
            "scanner": SCANNER,
            "state": "Scan Passed" if refused is None else "Scan Failed",
            "result": {"version": "1", "summary": summary, "description": description[:1024]},
        }
    ).decode()
