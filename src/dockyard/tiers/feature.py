"""Tiers as a `Feature`: `Usages` (listUsages, changes of tier), the storage history's
hourly job (`history.py`) and, with `[rate_limits] enabled`, the rate limits' middleware
(`middleware.RateLimits`). Its other parts plug in
elsewhere: the storage quota is the `StorageLimit` `services.py` hands to core's
`Uploads`, and its verb `show-usage` is among the management verbs
(`cli/registries.py`)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    from starlette.middleware import Middleware

    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.tiers.usage import Usages

    return {"usages": Usages(services.meta)}


def _middleware(services: Services) -> Sequence[Middleware]:
    """Not even installed when rate limits are off: no cost per request."""
    if not services.settings.rate_limits.enabled:
        return ()
    from starlette.middleware import Middleware

    from dockyard.tiers.middleware import RateLimits

    return [Middleware(RateLimits, services=services)]


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.tiers.history import record_storage_history

    return [record_storage_history(services)]


TIERS = Feature("tiers", services=_services, middleware=_middleware, jobs=_jobs)
