"""A finding: one advisory that affects one package of an image, as stored per
manifest (`scan_results.findings`, JSON), shown by the API and the CLI and written into
the report referrer. And the one rule that judges a set of findings against a severity
and an allowlist (`worst_refused`), which the pull policy and, later, the quarantine
writer both ask, so that they can never disagree."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from dockyard.scanning.severity import Severity


@dataclass(frozen=True)
class Finding:
    advisory: str  # the OSV id (GHSA-..., PYSEC-..., DSA-...)
    aliases: tuple[str, ...]  # CVE ids and others
    ecosystem: str
    package: str
    installed: str
    fixed: str | None  # the first fixed version after the installed one, if any
    severity: Severity
    score: float | None
    purl: str
    location: str
    summary: str | None = None

    def names(self) -> set[str]:
        """The advisory's id and aliases: what an allowlist entry may name."""
        return {self.advisory, *self.aliases}

    def to_json(self) -> dict[str, Any]:
        # Its fields are plain values: a shallow copy, not `asdict`'s deep one (a scan
        # writes thousands of findings twice, for the database and the report).
        return vars(self) | {"aliases": list(self.aliases), "severity": self.severity.word}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Finding:
        return cls(
            **{
                **value,
                "aliases": tuple(value.get("aliases") or ()),
                "severity": Severity.named(value["severity"]),
            }
        )

    def describe(self) -> str:
        """One line naming the finding, for a refusal's message."""
        fixed = f", fixed in {self.fixed}" if self.fixed else ""
        return f"{self.advisory} ({self.severity.word}) in {self.package} {self.installed}{fixed}"


def worst(findings: Iterable[Finding]) -> Severity:
    return max((f.severity for f in findings), default=Severity.NONE)


def ordered(findings: Iterable[Finding]) -> list[Finding]:
    """Worst first, then by package and advisory: how every surface lists them."""
    return sorted(findings, key=lambda f: (-f.severity, -(f.score or 0), f.package, f.advisory))


def worst_refused(
    findings: Iterable[Finding], threshold: Severity, allowlist: Collection[str]
) -> Finding | None:
    """The worst finding at or above `threshold` whose advisory (id or alias) is not in
    `allowlist`, or None when the findings pass."""
    allowed = set(allowlist)
    refused = [f for f in findings if f.severity >= threshold and not (f.names() & allowed)]
    return ordered(refused)[0] if refused else None
