"""`dockyard.tiers.rate_limits`: token buckets per registry and category, on a clock the
test moves; and which category a request counts in (`tiers.middleware.categories`)."""

from __future__ import annotations

import pytest

from dockyard.common.errors import TooManyRequests
from dockyard.metadata.records import RegistryRecord
from dockyard.tiers.middleware import categories
from dockyard.tiers.rate_limits import RateLimiter
from dockyard.tiers.tiers import BASIC, PREMIUM, RequestCategory

CONTOSO = RegistryRecord(1, "contoso", "contoso.example")
FABRIKAM = RegistryRecord(2, "fabrikam", "fabrikam.example")
READ, WRITE = (RequestCategory.READ,), (RequestCategory.WRITE,)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_registry_bursts_a_minute_of_requests_then_waits_for_the_refill() -> None:
    clock = Clock()
    limiter = RateLimiter({"DataplaneWrite": 3}, clock)
    for _ in range(3):
        limiter.admit(CONTOSO, BASIC, WRITE)
    with pytest.raises(TooManyRequests) as refused:
        limiter.admit(CONTOSO, BASIC, WRITE)
    assert refused.value.retry_after == 20  # 3 per minute: a token every 20 s
    assert "3 DataplaneWrite requests per minute (Basic tier)" in refused.value.message
    limiter.admit(FABRIKAM, BASIC, WRITE)  # another registry has buckets of its own
    limiter.admit(CONTOSO, BASIC, READ)  # and so has another category
    clock.now += 15
    with pytest.raises(TooManyRequests) as refused:
        limiter.admit(CONTOSO, BASIC, WRITE)
    assert refused.value.retry_after == 5  # counts down
    clock.now += 5
    limiter.admit(CONTOSO, BASIC, WRITE)


def test_the_tiers_limits_apply_and_follow_a_change_of_tier() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock)
    for _ in range(BASIC.requests_per_minute[RequestCategory.DELETE]):
        limiter.admit(CONTOSO, BASIC, (RequestCategory.DELETE,))
    with pytest.raises(TooManyRequests):
        limiter.admit(CONTOSO, BASIC, (RequestCategory.DELETE,))
    clock.now += 1  # Premium refills 4,000 a minute: a token every 15 ms
    limiter.admit(CONTOSO, PREMIUM, (RequestCategory.DELETE,))


def test_a_refused_request_takes_no_token_from_any_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter({"ListReferrers": 1, "DataplaneRead": 2}, clock)
    referrers = (RequestCategory.LIST_REFERRERS, RequestCategory.READ)
    limiter.admit(CONTOSO, PREMIUM, referrers)
    with pytest.raises(TooManyRequests):
        limiter.admit(CONTOSO, PREMIUM, referrers)
    limiter.admit(CONTOSO, PREMIUM, READ)  # the read bucket kept its second token
    with pytest.raises(TooManyRequests):
        limiter.admit(CONTOSO, PREMIUM, READ)


def test_requests_count_in_acr_categories() -> None:
    assert categories("GET", "/v2/app/manifests/v1") == READ
    assert categories("HEAD", "/v2/app/blobs/sha256:ab") == READ
    assert categories("PATCH", "/v2/app/blobs/uploads/x") == WRITE
    assert categories("DELETE", "/acr/v1/app/_tags/v1") == (RequestCategory.DELETE,)
    assert categories("GET", "/v2/app/referrers/sha256:ab") == (
        RequestCategory.LIST_REFERRERS,
        RequestCategory.READ,
    )
    assert categories("POST", "/oauth2/token") == (RequestCategory.OAUTH,)
    assert categories("GET", "/healthz") == ()
    assert categories("GET", "/oauth2/jwks") == ()
