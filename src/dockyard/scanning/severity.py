"""Severities: the qualitative rating of an advisory, from its CVSS vector (the base
score computed by the `cvss` library) or, without one, from the words databases write
(GHSA's `database_specific.severity`, Ubuntu's priorities). One scale for findings,
reports and the pull policy, ordered so that `max` gives the worst."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError


class Severity(IntEnum):
    """Harbor's scale (and Trivy's, but for `NONE`), lowest first. `UNKNOWN`: an
    advisory that rates nothing, which a policy at `low` or above does not refuse."""

    NONE = 0
    UNKNOWN = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def word(self) -> str:
        """How it is stored and shown: lower case, as Harbor's project settings."""
        return self.name.lower()

    @classmethod
    def named(cls, word: str) -> Severity:
        """The severity a word names, whatever its case; ValueError for another word."""
        try:
            return cls[word.strip().upper()]
        except KeyError:
            names = ", ".join(s.word for s in cls)
            raise ValueError(f"severity must be one of {names}, not {word!r}") from None


# Words databases use where they give no vector (GHSA's MODERATE, Ubuntu's priorities).
_WORDS = {
    "negligible": Severity.LOW,
    "low": Severity.LOW,
    "moderate": Severity.MEDIUM,
    "medium": Severity.MEDIUM,
    "important": Severity.HIGH,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
# Newest CVSS version first: a record with several vectors is rated by the newest.
_VECTORS = (("CVSS_V4", CVSS4), ("CVSS_V3", CVSS3), ("CVSS_V2", CVSS2))


def from_score(score: float) -> Severity:
    """CVSS v3/v4's qualitative rating of a base score (v2 scores use the same bands,
    as NVD and Trivy do)."""
    if score == 0:
        return Severity.NONE
    if score < 4:
        return Severity.LOW
    if score < 7:
        return Severity.MEDIUM
    if score < 9:
        return Severity.HIGH
    return Severity.CRITICAL


def rate(record: dict[str, Any]) -> tuple[Severity, float | None, str | None]:
    """An OSV record's severity, CVSS base score and the vector it came from: the
    record's own `severity[]` or its first affected package's, else the words of
    `database_specific.severity` or an Ubuntu priority, else `UNKNOWN`."""
    entries = list(record.get("severity") or [])
    for affected in record.get("affected") or []:
        entries += affected.get("severity") or []
    by_type = {e.get("type"): str(e.get("score", "")) for e in entries if isinstance(e, dict)}
    for kind, parser in _VECTORS:
        vector = by_type.get(kind)
        if not vector:
            continue
        try:
            score = float(parser(vector).base_score)
        except (CVSSError, ValueError, KeyError, IndexError):
            continue
        return from_score(score), score, vector
    words = [by_type.get("Ubuntu", "")]
    specific = record.get("database_specific")
    if isinstance(specific, dict):
        words.append(str(specific.get("severity") or ""))
    for word in words:
        if word.lower() in _WORDS:
            return _WORDS[word.lower()], None, None
    return Severity.UNKNOWN, None, None
