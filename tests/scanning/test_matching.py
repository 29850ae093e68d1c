"""Matching packages against imported OSV advisories with each ecosystem's version
rules: dpkg (a `+deb12u10` is after `+deb12u3`, which a string comparison gets wrong),
apk (`-r` revisions), PEP 440 (a release candidate comes before its release), SemVer
for npm and Go (`v` prefixes); a binary Debian package found through its source
package; severities from CVSS vectors and, for Debian, from the CVE alias."""

from __future__ import annotations

from pathlib import Path

import pytest
from osv_facts import ALL, apk, deb, go, npm, pypi, write_zip

from dockyard.metadata.store import Metadata
from dockyard.sbom.packages import Package
from dockyard.scanning.database import VulnDatabase
from dockyard.scanning.severity import Severity


@pytest.fixture
def database(meta: Metadata, tmp_path: Path) -> VulnDatabase:
    database = VulnDatabase(meta)
    database.import_files([write_zip(tmp_path / "all.zip", ALL)])
    return database


def found(database: VulnDatabase, package: Package) -> list[tuple[str, str | None]]:
    return [(f.advisory, f.fixed) for f in database.match([package])]


@pytest.mark.parametrize(
    ("package", "advisory", "fixed"),
    [
        (deb("libc6", "2.36-9+deb12u1", source="glibc"), "DSA-5514-1", "2.36-9+deb12u3"),
        (deb("glibc", "2.36-9"), "DSA-5514-1", "2.36-9+deb12u3"),
        (deb("libc6", "2.36-9+deb12u3", source="glibc"), None, None),
        (deb("libc6", "2.36-9+deb12u10", source="glibc"), None, None),
        (deb("libc6", "1:2.30-1", source="glibc"), None, None),  # an epoch sorts after
        (apk("openssl", "3.1.3-r0"), "ALPINE-CVE-2023-5363", "3.1.4-r0"),
        (apk("openssl", "3.1.4-r0"), None, None),
        (apk("openssl", "3.1.4-r10"), None, None),
        (pypi("requests", "2.3.0"), "GHSA-j8r2-6x86-q33q", "2.31.0"),
        (pypi("Requests", "2.31.0rc1"), "GHSA-j8r2-6x86-q33q", "2.31.0"),
        (pypi("requests", "2.31.0"), None, None),
        (pypi("requests", "2.2.1"), None, None),
        (pypi("requests", "2.100.0"), None, None),
        (npm("lodash", "4.17.20"), "GHSA-35jh-r3h4-6jhm", "4.17.21"),
        (npm("lodash", "4.17.21"), None, None),
        (npm("lodash", "4.17.9"), "GHSA-35jh-r3h4-6jhm", "4.17.21"),
        (go("golang.org/x/net", "v0.15.0"), "GO-2023-2102", "0.17.0"),
        (go("golang.org/x/net", "v0.17.0"), None, None),
        (go("golang.org/x/net", "v0.0.0-20230101000000-abcdefabcdef"), "GO-2023-2102", "0.17.0"),
    ],
)
def test_each_ecosystem_compares_by_its_own_rules(
    database: VulnDatabase, package: Package, advisory: str | None, fixed: str | None
) -> None:
    expected = [] if advisory is None else [(advisory, fixed)]
    assert found(database, package) == expected


def test_another_release_or_ecosystem_does_not_match(database: VulnDatabase) -> None:
    eleven = Package("Debian:11", "glibc", "2.31-13", "pkg:deb/debian/glibc@2.31-13", "/x")
    alpine = Package("Alpine:v3.19", "openssl", "3.1.3-r0", "pkg:apk/alpine/openssl", "/x")
    assert database.match([eleven, alpine]) == []


def test_severities_come_from_vectors_words_and_aliases(database: VulnDatabase) -> None:
    findings = database.match(
        [
            deb("libc6", "2.36-9+deb12u1", source="glibc"),
            pypi("requests", "2.30.0"),
            apk("openssl", "3.1.3-r0"),
            npm("lodash", "4.17.20"),
            go("golang.org/x/net", "v0.15.0"),
        ]
    )
    rated = {f.advisory: (f.severity, f.score) for f in findings}
    assert rated == {
        "DSA-5514-1": (Severity.HIGH, 7.8),  # CVE-2023-4911's vector
        "GHSA-j8r2-6x86-q33q": (Severity.MEDIUM, 6.1),
        "ALPINE-CVE-2023-5363": (Severity.HIGH, None),  # database_specific words
        "GHSA-35jh-r3h4-6jhm": (Severity.HIGH, 7.2),
        "GO-2023-2102": (Severity.UNKNOWN, None),
    }
    assert [f.advisory for f in findings][:1] == ["DSA-5514-1"]  # worst first
    glibc = findings[0]
    assert "CVE-2023-4911" in glibc.aliases and glibc.installed == "2.36-9+deb12u1"
    assert glibc.package == "libc6" and glibc.location == "/var/lib/dpkg/status"
