"""The request rate limits at the door, as pure ASGI middleware the tiers feature
contributes (`Feature.middleware`) only when `[rate_limits] enabled`: a request past its
registry's limit gets 429 TOOMANYREQUESTS with `Retry-After` before routing or
authentication, as ACR answers.

Which category a request counts in is ACR's: by method on the registry's data plane
(`/v2`, `/acr/v1`), a referrers GET in ListReferrers as well as DataplaneRead, the token
service's `/oauth2/token` and `/oauth2/exchange` in OAuth. Anything else (health, the
management API, JWKS) is not limited. The cost per request is a few dictionary lookups:
the tiers come from a read kept until the database changes (`Usages.skus`)."""

from __future__ import annotations

from dockyard.api.errors import error_response
from dockyard.api.network import scope_registry
from dockyard.common.errors import TooManyRequests
from dockyard.services import Services
from dockyard.tiers.rate_limits import RateLimiter
from dockyard.tiers.tiers import PREMIUM, TIERS, RequestCategory

_READ = (RequestCategory.READ,)
_BY_METHOD = {
    "GET": _READ,
    "HEAD": _READ,
    "OPTIONS": _READ,
    "PUT": (RequestCategory.WRITE,),
    "PATCH": (RequestCategory.WRITE,),
    "POST": (RequestCategory.WRITE,),
    "DELETE": (RequestCategory.DELETE,),
}
_REFERRERS = (RequestCategory.LIST_REFERRERS, RequestCategory.READ)
_OAUTH = (RequestCategory.OAUTH,)
_OAUTH_PATHS = frozenset({"/oauth2/token", "/oauth2/exchange"})


def categories(method: str, path: str) -> tuple[RequestCategory, ...]:
    """The categories a request counts in; empty if it is not limited."""
    if path.startswith(("/v2/", "/acr/v1/")):
        if method == "GET" and "/referrers/" in path:
            return _REFERRERS
        return _BY_METHOD.get(method, ())
    if path in _OAUTH_PATHS:
        return _OAUTH
    return ()


class RateLimits:
    def __init__(self, app, services: Services) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self._registries = services.registries
        self._usage = services.usages
        self._limiter = RateLimiter(services.settings.rate_limits.per_minute)

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            counted = categories(scope["method"], scope["path"])
            if counted:
                registry = scope_registry(scope, self._registries)
                tier = TIERS.get(self._usage.skus().get(registry.id, ""), PREMIUM)
                try:
                    self._limiter.admit(registry, tier, counted)
                except TooManyRequests as exc:
                    response = error_response(exc, {"Retry-After": str(exc.retry_after)})
                    if scope["method"] == "HEAD":
                        response.body = b""
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)
