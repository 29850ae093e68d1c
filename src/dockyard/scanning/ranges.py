"""Whether an installed version falls in an OSV `affected[]` entry, and the version that
fixes it: OSV's evaluation (an explicit `versions` entry, or a range whose events,
walked in version order, leave it introduced and not yet fixed), with every comparison
made by the ecosystem's version class (`versions`). `GIT` ranges name commits, which
an installed package does not carry: they are skipped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from univers.versions import SemverVersion, Version

from dockyard.scanning.versions import parse, scheme


@dataclass(frozen=True)
class Hit:
    fixed: str | None  # the lowest fixing version above the installed one


def _events(
    kind: type[Version], events: Sequence[dict[str, Any]]
) -> list[tuple[Version, str, str]]:
    """(version, kind of event, text) in version order, but for `introduced: "0"`
    (before everything, even a pre-release of 0.0.0: `_in_range` starts affected); an
    event whose version does not parse is left out."""
    out = []
    for event in events:
        for key in ("introduced", "fixed", "last_affected", "limit"):
            text = event.get(key)
            if not isinstance(text, str):
                continue
            if (key == "limit" and text == "*") or (key == "introduced" and text == "0"):
                continue
            version = parse(kind, text)
            if version is not None:
                out.append((version, key, text))
    out.sort(key=lambda item: (item[0], item[1] != "introduced"))
    return out


def _in_range(installed: str, kind: type[Version], events: Sequence[dict[str, Any]]) -> Hit | None:
    version = parse(kind, installed)
    if version is None:
        return None
    walked = _events(kind, events)
    limits = [v for v, key, _ in walked if key == "limit"]
    if limits and not any(version < limit for limit in limits):
        return None
    affected = any(event.get("introduced") == "0" for event in events)
    for at, key, _ in walked:
        if key == "introduced" and version >= at:
            affected = True
        elif (key == "fixed" and version >= at) or (key == "last_affected" and version > at):
            affected = False
    if not affected:
        return None
    fixes = [(at, text) for at, key, text in walked if key == "fixed" and at > version]
    return Hit(min(fixes, key=lambda fix: fix[0])[1] if fixes else None)


def affects(
    ecosystem: str, installed: str, ranges: Sequence[dict[str, Any]], versions: Sequence[str]
) -> Hit | None:
    """A `Hit` when `installed` is affected, else None."""
    hit: Hit | None = None
    own = scheme(ecosystem)
    for entry in ranges:
        kind = {"SEMVER": SemverVersion, "ECOSYSTEM": own}.get(entry.get("type", ""))
        if kind is None:
            continue
        found = _in_range(installed, kind, entry.get("events") or [])
        if found is not None and (hit is None or hit.fixed is None):
            hit = found
    if hit is None and installed in versions:
        hit = Hit(None)
    return hit
