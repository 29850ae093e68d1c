"""Each ecosystem's version ordering, from `univers` (never compared by hand here):
dpkg for Debian and Ubuntu, apk for Alpine, Wolfi and Chainguard, rpm for the Red Hat
family and SUSE, PEP 440 for PyPI, SemVer for npm, crates.io and OSV's `SEMVER` ranges,
Go's (SemVer with a `v`) for Go, and Maven's, NuGet's, RubyGems' and Composer's. An
ecosystem is named as OSV names it, its release after a colon ("Debian:12")."""

from __future__ import annotations

import functools

from univers.versions import (
    AlpineLinuxVersion,
    ComposerVersion,
    DebianVersion,
    GolangVersion,
    InvalidVersion,
    MavenVersion,
    NugetVersion,
    PypiVersion,
    RpmVersion,
    RubygemsVersion,
    SemverVersion,
    Version,
)

_BY_ECOSYSTEM: dict[str, type[Version]] = {
    "Debian": DebianVersion,
    "Ubuntu": DebianVersion,
    "Alpine": AlpineLinuxVersion,
    "Wolfi": AlpineLinuxVersion,
    "Chainguard": AlpineLinuxVersion,
    "Red Hat": RpmVersion,
    "AlmaLinux": RpmVersion,
    "Rocky Linux": RpmVersion,
    "SUSE": RpmVersion,
    "openSUSE": RpmVersion,
    "Mageia": RpmVersion,
    "PyPI": PypiVersion,
    "npm": SemverVersion,
    "crates.io": SemverVersion,
    "Go": GolangVersion,
    "Maven": MavenVersion,
    "NuGet": NugetVersion,
    "RubyGems": RubygemsVersion,
    "Packagist": ComposerVersion,
}


def base(ecosystem: str) -> str:
    """ "Debian:12" -> "Debian"; "PyPI" -> "PyPI"."""
    return ecosystem.split(":", 1)[0]


def scheme(ecosystem: str) -> type[Version] | None:
    """The version class of an ecosystem, None for one we cannot order (its advisories
    then match only by their explicit `versions`)."""
    return _BY_ECOSYSTEM.get(base(ecosystem))


@functools.lru_cache(maxsize=1 << 16)
def parse(kind: type[Version], text: str) -> Version | None:
    """`text` as a version of `kind`, or None where `univers` cannot read it (apk's
    `_git`/`_svn`/`_cvs`/`_hg` suffixes, for one): such a version is not compared, so it
    matches only by an advisory's explicit `versions`. Kept per process (versions are
    immutable): a scan reads the same installed and fixed versions over and over."""
    if kind is SemverVersion or kind is GolangVersion:
        text = text.removeprefix("v")  # OSV's SEMVER ranges never carry one; Go's do
    try:
        return kind(text)
    except (InvalidVersion, ValueError, TypeError):
        return None
