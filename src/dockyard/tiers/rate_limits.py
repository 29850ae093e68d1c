"""Request rate limits per registry, as ACR applies them: a token bucket per registry and
category (DataplaneRead, DataplaneWrite, ...), refilled at the tier's requests per
minute and holding at most one minute's worth, so a quiet registry may burst.

Best-effort by design: the buckets live in this process, so each server process (and
node) admits the tier's rate on its own; sharing them would cost a database or Redis
round trip per request. A tier change applies from the next request (the bucket takes
the new rate, keeping its tokens up to the new size). Per-identity limits are not
applied."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from dockyard.common.errors import TooManyRequests
from dockyard.metadata.records import RegistryRecord
from dockyard.tiers.tiers import RequestCategory, Tier


@dataclass
class _Bucket:
    per_minute: int
    tokens: float
    at: float

    def refill(self, now: float) -> None:
        self.tokens = min(self.per_minute, self.tokens + (now - self.at) * self.per_minute / 60)
        self.at = now

    def wait(self) -> float:
        """Seconds until the bucket holds a whole token (0 if it does now)."""
        return max(0.0, (1 - self.tokens) * 60 / self.per_minute)


class RateLimiter:
    def __init__(
        self,
        per_minute: Mapping[str, int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """`per_minute`: limits by category name that replace every tier's."""
        self._overrides = dict(per_minute or {})
        self._monotonic = monotonic
        self._buckets: dict[tuple[int, RequestCategory], _Bucket] = {}

    def admit(
        self, registry: RegistryRecord, tier: Tier, categories: Iterable[RequestCategory]
    ) -> None:
        """Take one token from the registry's bucket of each category, or, if one of them
        is empty, none: raise `TooManyRequests` with the whole seconds to wait."""
        now = self._monotonic()
        buckets = []
        for category in categories:
            limit = self._overrides.get(category.value, tier.requests_per_minute[category])
            bucket = self._buckets.get((registry.id, category))
            if bucket is None:
                bucket = self._buckets[registry.id, category] = _Bucket(limit, limit, now)
            elif bucket.per_minute != limit:
                bucket.per_minute = limit
            bucket.refill(now)
            buckets.append((category, limit, bucket))
        for category, limit, bucket in buckets:
            wait = bucket.wait()
            if wait > 0:
                seconds = max(1, math.ceil(wait))
                raise TooManyRequests(
                    f"registry {registry.name} is past its rate limit of {limit} "
                    f"{category.value} requests per minute ({tier.name} tier); "
                    f"retry after {seconds} s",
                    retry_after=seconds,
                )
        for _, _, bucket in buckets:
            bucket.tokens -= 1
