"""A package found in an image: what an SBOM lists and what a vulnerability scan
matches against OSV's advisories. Shared by `sbom` (which finds them) and `scanning`
(which matches them), so that neither imports the other's internals."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Package:
    """One installed package. `ecosystem` is OSV's name for where the version comes from,
    with the distribution's release where OSV has one ("Debian:12", "Alpine:v3.19",
    "PyPI", "npm", "Go", "Maven"): advisories are matched by it and `name`, and `version`
    is compared by that ecosystem's rules. `purl` is the package URL; `location` the
    file in the image the package was read from."""

    ecosystem: str
    name: str
    version: str
    purl: str
    location: str
