"""A registry's use of what its tier limits (ACR's listUsages, `dockyard show-usage`),
and changes of tier and storage quota, which must fit that use.

A change takes effect at once: it is one transaction, and every check reads the tier
from the database (quotas on each push, the rate limits through a cache that the change
empties). A change the registry's current use does not fit (a downgrade below its
storage, its tokens, scope maps, IP rules or webhooks, or that would take away a
feature it uses, such as the retention policy) is refused with every reason, checked
in the transaction that would make it, so nothing can slip in between.

The tier's limits on what a registry may add are applied here too, for every caller
(the CLI, the management API): `require_room` before one more webhook, token, scope map
or IP rule, `require_feature` before turning on anonymous pull, network rules or the
retention policy. Both are called inside the transaction that makes the change, under
the writers' lock: two concurrent creates cannot both take the last place, and a
change of tier is ordered before (and refuses) or after (and is seen by) them."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.common.errors import RequestInvalid, TierLimit
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata, Transaction
from dockyard.metadata.usage import StorageRecord, TierRecord, UsageStore, UsageWrites
from dockyard.tiers.quotas import quota_of
from dockyard.tiers.sizes import format_size
from dockyard.tiers.tiers import TIERS, Counted, Feature, Tier, lowest_allowing, tier_named

BYTES, COUNT = "Bytes", "Count"


@dataclass(frozen=True)
class Usage:
    """One line of ACR's listUsages: `limit` -1 means unlimited."""

    name: str
    limit: int
    current_value: int
    unit: str


def usages(tier: Tier, storage: StorageRecord, counts: dict[str, int]) -> list[Usage]:
    """ACR's usage lines, in its order, names and units. Geo-replications count the home
    region; what Dockyard does not have (VNet rules, private endpoints) counts 0."""
    return [
        Usage("Size", quota_of(storage), storage.used_bytes, BYTES),
        Usage("Webhooks", tier.webhooks, counts["webhooks"], COUNT),
        Usage("Geo-replications", tier.replications, counts.get("replications", 0) + 1, COUNT),
        Usage("IPRules", tier.ip_rules, counts["ip_rules"], COUNT),
        Usage("VNetRules", tier.vnet_rules, 0, COUNT),
        Usage("PrivateEndpointConnections", tier.private_endpoints, 0, COUNT),
        Usage("ScopeMaps", tier.scope_maps, counts["scope_maps"], COUNT),
        Usage("Tokens", tier.tokens, counts["tokens"], COUNT),
    ]


def misfits(target: Tier, found: TierRecord, counts: dict[str, int]) -> list[str]:
    """Why the registry as it is (`found`, `counts`) does not fit `target`: empty if it
    does."""
    reasons = []
    used = found.storage.used_bytes
    if found.storage.quota_bytes is None and used > target.storage_limit:
        reasons.append(
            f"it stores {format_size(used)} and {target.name} allows "
            f"{format_size(target.storage_limit)}"
        )
    for line in usages(target, found.storage, counts)[1:]:
        if line.limit != -1 and line.current_value > line.limit:
            reasons.append(
                f"it has {line.current_value} {line.name} and {target.name} allows {line.limit}"
            )
    in_use = {
        Feature.ANONYMOUS_PULL: found.anonymous_pull,
        Feature.NETWORK_RULES: found.network_rules,
        Feature.RETENTION: found.retention,
        Feature.CUSTOMER_MANAGED_KEYS: found.encryption,
        Feature.GEO_REPLICATION: found.geo_replication,
    }
    reasons += [
        f"it uses {feature}, which {target.name} does not allow"
        for feature, used_now in in_use.items()
        if used_now and not target.allows(feature)
    ]
    return reasons


def check_feature(tier: Tier, registry: RegistryRecord, feature: Feature) -> None:
    """Refuse (`TierLimit`) `feature` if `tier` does not allow it."""
    if not tier.allows(feature):
        raise TierLimit(
            f"the {tier.name} tier of registry {registry.name} does not allow {feature}: "
            f"move the registry to {lowest_allowing(feature).name} first"
        )


def require_feature(tx: Transaction, registry: RegistryRecord, feature: Feature) -> None:
    """Inside the transaction that turns `feature` on: refuse it unless the registry's
    tier, read in that transaction, allows it."""
    check_feature(tier_named(UsageWrites(tx).storage(registry.id).sku), registry, feature)


class TierAccessLimits:
    """The tier's limits on what `auth.administration.Administration` adds (its
    `AccessLimits`): anonymous pull, scope maps, tokens."""

    def allow_anonymous_pull(self, tx: Transaction, registry: RegistryRecord) -> None:
        require_feature(tx, registry, Feature.ANONYMOUS_PULL)

    def room_for_scope_map(self, tx: Transaction, registry: RegistryRecord) -> None:
        require_room(tx, registry, Counted.SCOPE_MAPS)

    def room_for_token(self, tx: Transaction, registry: RegistryRecord) -> None:
        require_room(tx, registry, Counted.TOKENS)


def require_room(tx: Transaction, registry: RegistryRecord, counted: Counted) -> None:
    """Inside the transaction that adds one of `counted`: refuse (`TierLimit`) if the
    registry has as many as its tier allows already."""
    writes = UsageWrites(tx)
    tier = tier_named(writes.storage(registry.id).sku)
    limit, count = tier.limit(counted), writes.count(registry.id, counted.value)
    if count < limit:
        return
    larger = next((t for t in TIERS.values() if t.limit(counted) > limit), None)
    raise TierLimit(
        f"registry {registry.name} has {count} {counted.label}, as many as its {tier.name} "
        f"tier allows ({limit}): delete one"
        + (f" or move the registry to {larger.name} ({larger.limit(counted)})" if larger else ""),
        detail={"limit": limit, "current": count},
    )


class Usages:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta
        self._store = UsageStore(meta)

    def skus(self) -> dict[int, str]:
        """Every registry's tier name, read on every request by the rate limits: kept
        until the configuration changes (SQLite) or a few seconds."""
        return self._store.skus()

    def tier(self, registry: RegistryRecord) -> Tier:
        return tier_named(self._store.storage(registry.id).sku)

    def usage(self, registry: RegistryRecord) -> list[Usage]:
        """ACR's listUsages of the registry."""
        storage = self._store.storage(registry.id)
        return usages(tier_named(storage.sku), storage, self._store.counts(registry.id))

    def change_sku(self, registry: RegistryRecord, sku: str) -> Tier:
        """Move the registry to the tier `sku` (any case); refused (`TierLimit`) with every
        reason if what the registry uses now does not fit it."""
        target = tier_named(sku)
        with self._meta.transaction() as tx:
            writes = UsageWrites(tx)
            found = writes.tier(registry.id)
            reasons = misfits(target, found, writes.counts(registry.id))
            if reasons:
                raise TierLimit(
                    f"registry {registry.name} cannot move to {target.name}: "
                    f"{'; '.join(reasons)}. Remove what does not fit first, or keep "
                    f"{found.storage.sku}"
                )
            writes.set_tier(registry.id, target.name, found.storage.quota_bytes)
        return target

    def set_storage_quota(self, registry: RegistryRecord, quota_bytes: int | None) -> None:
        """Give the registry a storage quota of its own (None: its tier's limit again).
        A quota below what the registry stores is refused: pushes would all fail."""
        if quota_bytes is not None and quota_bytes <= 0:
            raise RequestInvalid("a storage quota must be more than 0 bytes")
        with self._meta.transaction() as tx:
            writes = UsageWrites(tx)
            storage = writes.storage(registry.id)
            limit = (
                quota_bytes if quota_bytes is not None else tier_named(storage.sku).storage_limit
            )
            if storage.used_bytes > limit:
                raise TierLimit(
                    f"registry {registry.name} stores {format_size(storage.used_bytes)}, "
                    f"more than a quota of {format_size(limit)}: delete images and run "
                    "`dockyard gc` first"
                )
            writes.set_tier(registry.id, storage.sku, quota_bytes)
