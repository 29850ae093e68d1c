"""ACR's three service tiers (SKUs) as data: what each includes, allows and limits.

The numbers are ACR's (its limits table and its request rate limits per registry).
ACR bills storage past a tier's *included* storage and refuses only past its storage
*limit*; Dockyard bills nothing, so a registry's storage quota is the tier's limit
unless the registry has a quota of its own (`registries.storage_quota_bytes`, which
replaces it, lower or higher, as ACR support raises a limit). Tiers never differ in
what a push or a pull does, only in these limits; the rules that apply them are in
`tiers.usage` (changes of tier, listUsages), `tiers.quotas` (storage) and
`tiers.rate_limits` (requests)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dockyard.common.errors import RequestInvalid

GIB = 1 << 30
TIB = 1 << 40


class Feature(StrEnum):
    """What some tiers allow and others do not, among what Dockyard has."""

    ANONYMOUS_PULL = "anonymous pull"
    NETWORK_RULES = "network rules (IP access rules, default action Deny, no public access)"
    RETENTION = "the retention policy for untagged manifests"
    GEO_REPLICATION = "geo-replication"
    CUSTOMER_MANAGED_KEYS = "encryption with customer-managed keys"


class Counted(StrEnum):
    """What a tier limits by number, each counted per registry; the values name the
    `Tier` fields that hold the limits."""

    WEBHOOKS = "webhooks"
    TOKENS = "tokens"
    SCOPE_MAPS = "scope_maps"
    IP_RULES = "ip_rules"

    @property
    def label(self) -> str:
        return "IP rules" if self is Counted.IP_RULES else self.value.replace("_", " ")


class RequestCategory(StrEnum):
    """ACR's request rate limit categories (by HTTP method; referrers count twice)."""

    READ = "DataplaneRead"  # GET, HEAD, OPTIONS
    WRITE = "DataplaneWrite"  # PUT, PATCH, POST
    DELETE = "DataplaneDelete"
    LIST_REFERRERS = "ListReferrers"  # a referrers GET, which is a DataplaneRead too
    OAUTH = "OAuth"  # /oauth2/token and /oauth2/exchange


@dataclass(frozen=True)
class Tier:
    name: str
    included_storage: int  # bytes ACR's price includes (Dockyard shows it, never refuses)
    storage_limit: int  # bytes: the storage quota unless the registry sets its own
    webhooks: int
    tokens: int
    scope_maps: int
    ip_rules: int
    vnet_rules: int
    private_endpoints: int
    replications: int  # geo-replications, the home region included; -1: unlimited
    features: frozenset[Feature]
    requests_per_minute: dict[RequestCategory, int]  # per registry

    def allows(self, feature: Feature) -> bool:
        return feature in self.features

    def limit(self, counted: Counted) -> int:
        return getattr(self, counted.value)


_BASIC_AND_STANDARD_RATES = {
    RequestCategory.READ: 10_000,
    RequestCategory.WRITE: 2_000,
    RequestCategory.DELETE: 1_000,
    RequestCategory.LIST_REFERRERS: 500,
    RequestCategory.OAUTH: 10_000,
}

BASIC = Tier(
    name="Basic",
    included_storage=10 * GIB,
    storage_limit=40 * TIB,
    webhooks=2,
    tokens=100,
    scope_maps=100,
    ip_rules=0,
    vnet_rules=0,
    private_endpoints=0,
    replications=1,
    features=frozenset(),
    requests_per_minute=_BASIC_AND_STANDARD_RATES,
)
STANDARD = Tier(
    name="Standard",
    included_storage=100 * GIB,
    storage_limit=40 * TIB,
    webhooks=10,
    tokens=500,
    scope_maps=500,
    ip_rules=0,
    vnet_rules=0,
    private_endpoints=0,
    replications=1,
    features=frozenset({Feature.ANONYMOUS_PULL}),
    requests_per_minute=_BASIC_AND_STANDARD_RATES,
)
PREMIUM = Tier(
    name="Premium",
    included_storage=500 * GIB,
    storage_limit=100 * TIB,
    webhooks=500,
    tokens=50_000,
    scope_maps=50_000,
    ip_rules=200,
    vnet_rules=100,
    private_endpoints=200,
    replications=-1,
    features=frozenset(Feature),
    requests_per_minute={
        RequestCategory.READ: 20_000,
        RequestCategory.WRITE: 4_000,
        RequestCategory.DELETE: 4_000,
        RequestCategory.LIST_REFERRERS: 2_000,
        RequestCategory.OAUTH: 20_000,
    },
)
TIERS = {tier.name: tier for tier in (BASIC, STANDARD, PREMIUM)}


def lowest_allowing(feature: Feature) -> Tier:
    return next(tier for tier in TIERS.values() if tier.allows(feature))


def tier_named(name: str) -> Tier:
    """The tier called `name`, in any case (ACR's `sku.name`: Basic, Standard, Premium)."""
    for tier in TIERS.values():
        if tier.name.lower() == name.lower():
            return tier
    raise RequestInvalid(f"unknown SKU {name!r}: choose Basic, Standard or Premium")
