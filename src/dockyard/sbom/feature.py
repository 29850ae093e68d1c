"""SBOMs as a `Feature`: for the registries `[sbom] registries` names, a job that lists
the packages of every image pushed and attaches SPDX and CycloneDX documents to it as
referrers (`generation.generate_on_push`). `inventory.image_packages` is what other
features (vulnerability scanning) call for an image's packages."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from dockyard.services import Services


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    if not services.settings.sbom.registries:
        return []
    from dockyard.sbom.generation import generate_on_push

    return [generate_on_push(services)]


SBOM = Feature("sbom", jobs=_jobs)
