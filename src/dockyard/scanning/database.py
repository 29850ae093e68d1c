"""The vulnerability database: OSV export files imported into the metadata database
(`import_files`), and the findings a list of packages has in it (`match`: the entries
naming them read here, their versions compared in the scans' own process, `matching`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs

import orjson

from dockyard.metadata import scanning as rows
from dockyard.metadata.scanning import AdvisoryRow, ImportCounts
from dockyard.metadata.store import Metadata
from dockyard.sbom.packages import Package
from dockyard.scanning import osv
from dockyard.scanning.findings import Finding, ordered
from dockyard.scanning.matching import Wanted, match_apart
from dockyard.scanning.severity import Severity
from dockyard.scanning.versions import base

_BATCH = 1000  # advisories per transaction: bounded memory, few statements


class VulnDatabase:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def import_files(self, paths: Sequence[Path]) -> ImportCounts:
        """Import every record of these files, in batches of a transaction each: an
        advisory not stored is added, one stored with an older `modified` replaced,
        the rest left alone (importing the same file again changes nothing); a
        withdrawn record removes its advisory."""
        counts = ImportCounts()
        batch: list[AdvisoryRow] = []
        withdrawn: list[str] = []
        for path in paths:
            for record in osv.read(path):
                counts.read += 1
                advisory = osv.advisory(record)
                if advisory.withdrawn:
                    withdrawn.append(advisory.id)
                else:
                    batch.append(_row(advisory))
                if len(batch) + len(withdrawn) >= _BATCH:
                    self._write(batch, withdrawn, counts)
                    batch, withdrawn = [], []
        self._write(batch, withdrawn, counts)
        return counts

    def _write(self, batch: list[AdvisoryRow], withdrawn: list[str], counts: ImportCounts) -> None:
        if batch or withdrawn:
            with self._meta.transaction() as tx:
                rows.import_batch(tx, batch, withdrawn, counts)

    def match(self, packages: Iterable[Package]) -> list[Finding]:
        """The findings of these packages: for each, the advisories of its ecosystem
        (and, for one with a release such as "Debian:12", of the bare ecosystem) that
        name it, by its own name or by its source package (a deb or apk purl's
        `upstream` qualifier), and whose ranges hold its version."""
        wanted: Wanted = {}
        for package in packages:
            for key in _keys(package):
                wanted.setdefault(key, []).append(package)
        found = match_apart(wanted, rows.affected_rows(self._meta, wanted))
        return ordered(self._rated_by_aliases(found))

    def _rated_by_aliases(self, findings: list[Finding]) -> list[Finding]:
        """Debian's and Alpine's advisories rate nothing: such a finding takes the worst
        severity of its aliases that are stored advisories themselves."""
        unrated = [f for f in findings if f.severity == Severity.UNKNOWN and f.aliases]
        if not unrated:
            return findings
        known = rows.rated(self._meta, (a for f in unrated for a in f.aliases))
        out = []
        for finding in findings:
            found = [known[a] for a in finding.aliases if a in known]
            found = [(Severity.named(s), score) for s, score in found]
            found = [pair for pair in found if pair[0] > Severity.UNKNOWN]
            if finding.severity == Severity.UNKNOWN and found:
                severity, score = max(found, key=lambda pair: (pair[0], pair[1] or 0))
                finding = replace(finding, severity=severity, score=score)
            out.append(finding)
        return out


def _row(advisory: osv.Advisory) -> AdvisoryRow:
    return AdvisoryRow(
        id=advisory.id,
        modified=advisory.modified,
        aliases=advisory.aliases,
        summary=advisory.summary,
        severity=advisory.severity.word,
        score=advisory.score,
        vector=advisory.vector,
        affected=tuple(
            (
                a.ecosystem,
                a.name,
                orjson.dumps(a.ranges).decode(),
                orjson.dumps(a.versions).decode(),
            )
            for a in advisory.affected
        ),
    )


def _keys(package: Package) -> set[tuple[str, str]]:
    """The (ecosystem, name) pairs an advisory may name this package by."""
    names = {osv.normalise_name(base(package.ecosystem), package.name)}
    _, _, query = package.purl.partition("?")
    for upstream in parse_qs(query.split("#", 1)[0]).get("upstream", []):
        names.add(upstream.split("@", 1)[0].split(" ", 1)[0])
    ecosystems = {package.ecosystem, base(package.ecosystem)}
    return {(ecosystem, name) for ecosystem in ecosystems for name in names if name}
