"""Registries as the management API sees them: resources placed in a subscription and a
resource group, with a location, tags, a SKU and the settings ARM exposes (admin user,
anonymous pull, public network access and IP rules, retention and soft delete policies).

Dockyard has no Azure, so placement is bookkeeping: any subscription and resource group
are accepted when a registry is created, and the registry answers only under them (a
registry created elsewhere, the default one, answers under the server's default
placement, `[management]`). Registry names stay unique across the server, as ACR's are
across Azure: they name the login server, `<name>.<[registry] domain>`.

Every change goes through the operation that owns it (`Administration` for the admin
user and anonymous pull, `Retention` and `SoftDelete` for the policies, the network
tables for the firewall), so the CLI and the API can never disagree; each applies the
tier's limits (`tiers.usage`) in its own transaction."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from dockyard.auth.administration import Administration
from dockyard.auth.network import MAX_RULES, DefaultAction, parse_rule, rule_text
from dockyard.common.errors import Conflict, RegistryError, RequestInvalid
from dockyard.core.registries import Registries
from dockyard.encryption.registry_keys import RegistryKeys
from dockyard.lifecycle.retention import Retention
from dockyard.lifecycle.soft_delete import SoftDelete
from dockyard.metadata.encryption import EncryptionRow
from dockyard.metadata.lifecycle import Policy
from dockyard.metadata.lifecycle import policies as read_policies
from dockyard.metadata.network import NetworkStore, NetworkWrites, TooManyRules
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.registry_resources import RegistryResourceWrites, RegistryRow, registry_rows
from dockyard.metadata.scanning import PolicyRow
from dockyard.metadata.store import Metadata
from dockyard.quarantine.states import Quarantine
from dockyard.scanning.policy import ScanPolicies
from dockyard.storage.stores import BlobStores
from dockyard.tiers.tiers import TIERS, Counted, Feature, tier_named
from dockyard.tiers.usage import require_feature, require_room

_REGISTRY_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")


class ResourceNotFound(RegistryError):
    code = "ResourceNotFound"
    default_message = "the resource was not found"


class ResourceGroupNotFound(ResourceNotFound):
    code = "ResourceGroupNotFound"
    default_message = "the resource group was not found"


@dataclass(frozen=True)
class Placement:
    """Where a resource lives in ARM's hierarchy. Compared case-insensitively, as ARM
    compares resource group names."""

    subscription_id: str
    resource_group: str

    def holds(self, other: Placement) -> bool:
        return (
            self.subscription_id.lower() == other.subscription_id.lower()
            and self.resource_group.lower() == other.resource_group.lower()
        )


@dataclass(frozen=True)
class NetworkRuleSet:
    default_action: str
    ip_rules: tuple[str, ...]  # canonical addresses and CIDR blocks


@dataclass(frozen=True)
class RegistryResource:
    record: RegistryRecord
    placement: Placement
    location: str
    tags: dict[str, str]
    sku: str
    created_at: datetime
    admin_user_enabled: bool
    anonymous_pull_enabled: bool
    public_network_access: bool
    network_rule_set: NetworkRuleSet
    retention: Policy
    soft_delete: Policy
    encryption: EncryptionRow | None
    quarantine_enabled: bool
    scanning: PolicyRow


@dataclass(frozen=True)
class PolicyChange:
    enabled: bool | None = None
    days: int | None = None


@dataclass(frozen=True)
class RegistryChange:
    """What a create or update asks for; None leaves a setting as it is."""

    tags: dict[str, str] | None = None
    sku: str | None = None
    admin_user_enabled: bool | None = None
    anonymous_pull_enabled: bool | None = None
    public_network_access: bool | None = None
    network_rule_set: NetworkRuleSet | None = None
    retention: PolicyChange = field(default_factory=PolicyChange)
    soft_delete: PolicyChange = field(default_factory=PolicyChange)
    encryption: EncryptionChange | None = None
    quarantine_enabled: bool | None = None
    scanning: ScanningChange | None = None


@dataclass(frozen=True)
class ScanningChange:
    """Dockyard's `policies.scanPolicy` and `policies.vulnerabilityPolicy` (extensions:
    ACR has neither); None leaves a setting as it is."""

    scan_on_push: bool | None = None
    quarantine_writer: bool | None = None
    block_enabled: bool | None = None
    block_severity: str | None = None
    allowlist: list[str] | None = None
    repositories: list[str] | None = None


@dataclass(frozen=True)
class EncryptionChange:
    """ACR's `encryption`: on with a key (a first time enables, a new key rotates), or
    off, which only a registry never encrypted may be (enabling is one-way)."""

    enabled: bool
    key_identifier: str | None = None
    identity: str | None = None


@dataclass(frozen=True)
class NameAvailability:
    available: bool
    reason: str | None = None
    message: str | None = None


def parse_network_rule_set(default_action: str, ip_rules: list[str]) -> NetworkRuleSet:
    """ACR's `networkRuleSet`: `Allow` or `Deny`, and at most 200 IP or CIDR rules."""
    if default_action not in tuple(DefaultAction):
        raise RequestInvalid(f"defaultAction must be Allow or Deny, not {default_action!r}")
    if len(ip_rules) > MAX_RULES:
        raise RequestInvalid(f"a registry has at most {MAX_RULES} IP rules")
    try:
        rules = tuple(dict.fromkeys(rule_text(parse_rule(r)) for r in ip_rules))
    except ValueError as exc:
        raise RequestInvalid(str(exc)) from None
    return NetworkRuleSet(default_action, rules)


class RegistryResources:
    def __init__(
        self,
        meta: Metadata,
        registries: Registries,
        stores: BlobStores,
        administration: Administration,
        retention: Retention,
        soft_delete: SoftDelete,
        default_placement: Placement,
        default_location: str,
        domain: str,
        change_sku: Callable[[RegistryRecord, str], object],
        keys: RegistryKeys,
        quarantine: Quarantine,
        scan_policies: ScanPolicies,
    ) -> None:
        """`change_sku`: moves a registry to another tier, refusing what does not fit
        (`tiers.usage.Usages.change_sku`)."""
        self._keys = keys
        self._quarantine = quarantine
        self._scan_policies = scan_policies
        self._meta = meta
        self._registries = registries
        self._stores = stores
        self._administration = administration
        self._retention = retention
        self._soft_delete = soft_delete
        self._default_placement = default_placement
        self._default_location = default_location
        self._domain = domain
        self._change_sku = change_sku

    # -- reading ---------------------------------------------------------------------------

    def get(self, placement: Placement, name: str) -> RegistryResource:
        found = self._find(placement, name)
        if found is None:
            raise ResourceNotFound(
                f"registry {name!r} was not found in resource group {placement.resource_group!r}"
            )
        return found

    def find(self, placement: Placement, name: str) -> RegistryResource | None:
        return self._find(placement, name)

    def placement(self, name: str) -> Placement:
        """Where the registry named `name` lives: for a change made without an ARM path
        (the portal's), through the same `update` as the management API's."""
        rows = registry_rows(self._meta, name)
        if not rows:
            raise ResourceNotFound(f"registry {name!r} was not found")
        return self._placement(rows[0])

    def list(
        self, subscription_id: str, resource_group: str | None = None
    ) -> list[RegistryResource]:
        """The registries of a subscription, or of one of its resource groups."""
        found = []
        for row in registry_rows(self._meta):
            placement = self._placement(row)
            if placement.subscription_id.lower() != subscription_id.lower():
                continue
            if resource_group is not None and not placement.holds(
                Placement(subscription_id, resource_group)
            ):
                continue
            found.append(self._resource(row))
        return found

    def placement_of(self, registry: RegistryRecord) -> Placement:
        rows = registry_rows(self._meta, registry.name)
        return self._placement(rows[0]) if rows else self._default_placement

    def check_name(self, name: str) -> NameAvailability:
        if not _REGISTRY_NAME.fullmatch(name):
            return NameAvailability(
                False, "Invalid", "registry names are 5 to 50 letters or digits"
            )
        if registry_rows(self._meta, name):
            return NameAvailability(
                False,
                "AlreadyExists",
                f"The registry DNS name {self.login_server(name)} is already in use.",
            )
        return NameAvailability(True)

    def login_server(self, name: str) -> str:
        return f"{name.lower()}.{self._domain}"

    def _find(self, placement: Placement, name: str) -> RegistryResource | None:
        rows = registry_rows(self._meta, name)
        if not rows or not self._placement(rows[0]).holds(placement):
            return None
        return self._resource(rows[0])

    def _placement(self, row: RegistryRow) -> Placement:
        if row.subscription_id is None or row.resource_group is None:
            return self._default_placement
        return Placement(row.subscription_id, row.resource_group)

    def _resource(self, row: RegistryRow) -> RegistryResource:
        policies = read_policies(self._meta, row.record.id)
        rules = NetworkStore(self._meta).rules(row.record.id)
        return RegistryResource(
            record=row.record,
            placement=self._placement(row),
            location=row.location or self._default_location,
            tags=row.tags,
            sku=row.sku,
            created_at=row.created_at,
            admin_user_enabled=row.admin_user_enabled,
            anonymous_pull_enabled=row.anonymous_pull_enabled,
            public_network_access=row.public_network_access,
            network_rule_set=NetworkRuleSet(
                row.network_default_action, tuple(r.rule for r in rules)
            ),
            retention=policies.retention,
            soft_delete=policies.soft_delete,
            encryption=self._keys.status(row.record),
            quarantine_enabled=self._quarantine.enabled(row.record, fresh=True),
            scanning=self._scan_policies.current(row.record.id),
        )

    # -- changing --------------------------------------------------------------------------

    def create(
        self, placement: Placement, name: str, location: str | None, change: RegistryChange
    ) -> RegistryResource:
        """A new registry, served at its login server from the next request on (other
        processes: within `Registries.REFRESH_SECONDS`)."""
        availability = self.check_name(name)
        if not availability.available:
            error = RequestInvalid if availability.reason == "Invalid" else Conflict
            raise error(availability.message)
        with self._meta.transaction() as tx:
            record = tx.create_registry(
                name.lower(), self.login_server(name), tier_named(change.sku or "").name
            )
            RegistryResourceWrites(tx).place(
                record.id, placement.subscription_id, placement.resource_group, location
            )
        self._registries.reload()
        try:
            return self.update(placement, record.name, change)
        except Exception:  # a setting refused (its tier, its values): no registry is made
            with self._meta.transaction() as tx:
                RegistryResourceWrites(tx).delete_registry(record.id)
            self._registries.reload()
            raise

    def update(self, placement: Placement, name: str, change: RegistryChange) -> RegistryResource:
        """Apply `change`. A move to a higher tier comes first, so that what it allows
        may be turned on with it; a move to a lower one last, so that what it does not
        allow may be turned off with it."""
        resource = self.get(placement, name)
        registry = resource.record
        target = None
        if change.sku is not None and change.sku.lower() != resource.sku.lower():
            target = tier_named(change.sku)
        tiers = list(TIERS.values())
        down = target is not None and tiers.index(target) < tiers.index(tier_named(resource.sku))
        if target is not None and not down:
            self._change_sku(registry, target.name)
        if change.encryption is not None:
            self._change_encryption(resource, change.encryption)
        if change.scanning is not None:
            self._scan_policies.update(
                registry,
                scan_on_push=change.scanning.scan_on_push,
                quarantine_writer=change.scanning.quarantine_writer,
                block_enabled=change.scanning.block_enabled,
                block_severity=change.scanning.block_severity,
                allowlist=change.scanning.allowlist,
                repositories=change.scanning.repositories,
            )
        if change.tags is not None:
            with self._meta.transaction() as tx:
                RegistryResourceWrites(tx).set_tags(registry.id, change.tags)
        if change.admin_user_enabled is not None:
            self._administration.set_admin_user(registry, change.admin_user_enabled)
        if change.anonymous_pull_enabled is not None:
            self._administration.set_anonymous_pull(registry, change.anonymous_pull_enabled)
        self._change_network(resource, change)
        if change.quarantine_enabled is not None:
            self._quarantine.set_enabled(registry, change.quarantine_enabled)
        # Turning one lifecycle policy off before the other on: they exclude each other.
        for policy, wanted in sorted(
            ((self._retention, change.retention), (self._soft_delete, change.soft_delete)),
            key=lambda pair: bool(pair[1].enabled),
        ):
            if wanted.enabled is not None or wanted.days is not None:
                policy.update(registry, wanted.enabled, wanted.days)
        if target is not None and down:
            self._change_sku(registry, target.name)
        return self.get(placement, name)

    def _change_encryption(self, resource: RegistryResource, wanted: EncryptionChange) -> None:
        registry, current = resource.record, resource.encryption
        if not wanted.enabled:
            if current is not None:
                raise RequestInvalid("encryption cannot be disabled once it is enabled")
            return
        if wanted.key_identifier is None:
            if current is None:
                raise RequestInvalid(
                    "encryption.keyVaultProperties.keyIdentifier is required to enable it"
                )
            if wanted.identity is not None and wanted.identity != current.identity:
                self._keys.rotate(registry, None, wanted.identity)
            return
        self._keys.enable(registry, wanted.key_identifier, wanted.identity)

    def _change_network(self, resource: RegistryResource, change: RegistryChange) -> None:
        wanted = change.network_rule_set
        if change.public_network_access is None and wanted is None:
            return
        registry, registry_id = resource.record, resource.record.id
        with self._meta.transaction() as tx:
            if change.public_network_access is False or (
                wanted is not None and wanted.default_action == DefaultAction.DENY
            ):
                require_feature(tx, registry, Feature.NETWORK_RULES)
            writes = NetworkWrites(tx)
            writes.set_access(
                registry_id,
                change.public_network_access,
                None if wanted is None else wanted.default_action,
            )
            if wanted is not None:
                kept = set(resource.network_rule_set.ip_rules)
                for rule in kept - set(wanted.ip_rules):
                    writes.remove_rule(registry_id, rule)
                for rule in wanted.ip_rules:
                    if rule not in kept:
                        require_room(tx, registry, Counted.IP_RULES)
                    try:
                        writes.add_rule(registry_id, rule, MAX_RULES)
                    except TooManyRules as exc:
                        raise RequestInvalid(str(exc)) from None

    async def delete(self, placement: Placement, name: str) -> bool:
        """Remove a registry, its rows and its bytes; False if there was none. The
        default registry stays: it answers every host no other registry claims."""
        resource = self.find(placement, name)
        if resource is None:
            return False
        registry = resource.record
        if registry.id == self._registries.for_host("").id:
            raise RequestInvalid(
                f"{registry.name} is the server's default registry; it cannot be deleted"
            )
        with self._meta.transaction() as tx:
            digests = RegistryResourceWrites(tx).delete_registry(registry.id)
        self._registries.reload()
        if digests:
            store = self._stores.for_registry(registry.name)
            await asyncio.to_thread(store.delete, *digests)
        return True
