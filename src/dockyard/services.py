"""Builds the registry's collaborators from `Settings`: the one place they are wired,
and where the features' pull and push policies join `Manifests`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from dockyard.audit.log import AuditLog
from dockyard.auth.administration import Administration
from dockyard.auth.keys import SigningKeys
from dockyard.auth.login_guard import LoginGuard
from dockyard.auth.logins import Logins
from dockyard.auth.management import ManagementAccess
from dockyard.auth.oidc import ExternalIssuers
from dockyard.auth.principals import Authenticator
from dockyard.auth.secret_box import SecretBox
from dockyard.auth.tokens import Lifetimes, TokenSigner
from dockyard.common.clock import Clock, utc_now
from dockyard.core.blobs import Blobs
from dockyard.core.garbage import GarbageCollector
from dockyard.core.listings import Listings
from dockyard.core.manifests import Manifests
from dockyard.core.policies import ManifestPolicies
from dockyard.core.properties import Properties
from dockyard.core.referrers import Referrers
from dockyard.core.registries import Registries
from dockyard.core.uploads import Uploads
from dockyard.events import Outbox
from dockyard.features import FEATURES
from dockyard.lifecycle.purge import Purge, PurgeSchedules
from dockyard.lifecycle.retention import Retention
from dockyard.lifecycle.soft_delete import SoftDelete
from dockyard.management.operations import Operations
from dockyard.management.registry_resources import Placement, RegistryResources
from dockyard.metadata.network import NetworkStore
from dockyard.metadata.store import Metadata
from dockyard.metadata.webhooks import WebhookStore
from dockyard.mirroring.cache_rules import CacheRules
from dockyard.mirroring.imports import Importer, SourceReads
from dockyard.mirroring.pull_through import PullThrough
from dockyard.settings import Settings
from dockyard.storage.stores import BlobStores
from dockyard.tiers.quotas import StorageQuota
from dockyard.tiers.usage import Usages
from dockyard.webhooks.delivery import Sender
from dockyard.webhooks.model import Webhooks


@dataclass
class Services:
    settings: Settings
    meta: Metadata
    stores: BlobStores
    registries: Registries
    blobs: Blobs
    uploads: Uploads
    usages: Usages
    garbage: GarbageCollector
    manifests: Manifests
    importer: Importer
    operations: Operations
    cache_rules: CacheRules
    pull_through: PullThrough
    listings: Listings
    properties: Properties
    referrers: Referrers
    retention: Retention
    purge: Purge
    purge_schedules: PurgeSchedules
    soft_delete: SoftDelete
    keys: SigningKeys
    tokens: TokenSigner
    authenticator: Authenticator
    administration: Administration
    login_guard: LoginGuard
    logins: Logins
    external_issuers: ExternalIssuers
    outbox: Outbox
    webhooks: Webhooks
    registry_resources: RegistryResources
    management_access: ManagementAccess
    audit: AuditLog

    def close(self) -> None:
        self.meta.close()


def build_services(settings: Settings, clock: Clock = utc_now) -> Services:
    meta = Metadata(settings.database_url, clock, read_cache=settings.metadata.read_cache)
    stores = BlobStores.from_settings(settings)
    registries = Registries(meta, settings.registry.default_name)
    registries.reload()
    box = SecretBox.from_file(settings.secret_key_path)
    keys = SigningKeys(meta, box)
    tokens = TokenSigner(
        keys,
        clock,
        Lifetimes(
            access=timedelta(minutes=settings.auth.access_token_minutes),
            refresh=timedelta(hours=settings.auth.refresh_token_hours),
        ),
    )
    uploads = Uploads(meta, stores, clock, StorageQuota(meta))
    blobs = Blobs(meta, stores)
    policies = ManifestPolicies()
    manifests = Manifests(meta, stores, policies)
    authenticator = Authenticator(meta, box, tokens, clock)
    login_guard = LoginGuard(meta, settings.auth, clock)
    external_issuers = ExternalIssuers(settings.auth.oidc)
    _, _, port = settings.server.listen.rpartition(":")
    reads = SourceReads(
        registries,
        authenticator if settings.auth.enabled else None,
        NetworkStore(meta),
        int(port) if port.isdigit() else None,
    )
    importer = Importer(meta, reads, blobs, uploads, manifests, settings.upstream.insecure_hosts)
    cache_rules = CacheRules(meta, box, reads)
    outbox = Outbox(
        meta,
        clock,
        retry_first=timedelta(seconds=settings.outbox.retry_first_seconds),
        retry_max=timedelta(seconds=settings.outbox.retry_max_seconds),
    )
    sender = Sender(WebhookStore(meta), box, clock, settings.webhooks.timeout_seconds)
    purge = Purge(meta, manifests, clock)
    administration = Administration(meta, box, clock)
    usages = Usages(meta)
    retention = Retention(meta, manifests, clock)
    soft_delete = SoftDelete(meta, clock)
    registry_resources = RegistryResources(
        meta,
        registries,
        stores,
        administration,
        retention,
        soft_delete,
        Placement(settings.management.subscription_id, settings.management.resource_group),
        settings.management.location,
        settings.registry_domain,
        usages.change_sku,
    )
    services = Services(
        settings=settings,
        meta=meta,
        stores=stores,
        registries=registries,
        blobs=blobs,
        uploads=uploads,
        usages=usages,
        garbage=GarbageCollector(meta, stores, uploads, clock, settings.gc.lock_share),
        manifests=manifests,
        importer=importer,
        operations=Operations(meta, clock),
        cache_rules=cache_rules,
        pull_through=PullThrough(manifests, cache_rules, importer),
        listings=Listings(meta),
        properties=Properties(meta),
        referrers=Referrers(meta),
        retention=retention,
        purge=purge,
        purge_schedules=PurgeSchedules(meta, purge, clock),
        soft_delete=soft_delete,
        keys=keys,
        tokens=tokens,
        authenticator=authenticator,
        administration=administration,
        login_guard=login_guard,
        logins=Logins(meta, authenticator, tokens, login_guard, external_issuers),
        external_issuers=external_issuers,
        outbox=outbox,
        webhooks=Webhooks(meta, box, outbox, sender, clock),
        registry_resources=registry_resources,
        management_access=ManagementAccess(meta),
        audit=AuditLog(
            meta,
            registries,
            clock,
            settings.audit.retention_days,
            settings.audit.buffer_rows,
            settings.audit.pulls,
        ),
    )
    for feature in FEATURES:
        policies.pulls.extend(feature.pull_policies(services))
        policies.pushes.extend(feature.push_policies(services))
    return services
