"""Tiers as a `Feature`: `Usages` (listUsages, changes of tier). Its other parts plug
in elsewhere for now: the storage quota is the `StorageLimit` `services.py` hands to
core's `Uploads`, the rate limits are the middleware `app.py` installs with
`[rate_limits] enabled`, and its verb `show-usage` is among the management verbs
(`cli/registries.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.tiers.usage import Usages

    return {"usages": Usages(services.meta)}


TIERS = Feature("tiers", services=_services)
