"""Builds the registry's collaborators from `Settings`: the kernel's here, then each
feature's through its `Feature.services` hook (in `FEATURES` order, so a feature may use
those before it), then the features' pull and push policies, which join `Manifests`."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
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
from dockyard.common.clock import Clock, HybridClock
from dockyard.core.blobs import Blobs
from dockyard.core.garbage import GarbageCollector
from dockyard.core.listings import Listings
from dockyard.core.manifests import Manifests
from dockyard.core.policies import ManifestPolicies
from dockyard.core.properties import Properties
from dockyard.core.referrers import Referrers
from dockyard.core.registries import Registries
from dockyard.core.uploads import Uploads
from dockyard.encryption.registry_keys import RegistryKeys
from dockyard.events import Outbox
from dockyard.features import FEATURES
from dockyard.lifecycle.purge import Purge, PurgeSchedules
from dockyard.lifecycle.retention import Retention
from dockyard.lifecycle.soft_delete import SoftDelete
from dockyard.management.operations import Operations
from dockyard.management.registry_resources import RegistryResources
from dockyard.metadata.monitoring import MonitoringStore
from dockyard.metadata.network import NetworkStore
from dockyard.metadata.store import Metadata
from dockyard.mirroring.cache_rules import CacheRules
from dockyard.mirroring.imports import Importer
from dockyard.mirroring.pull_through import PullThrough
from dockyard.quarantine.states import Quarantine
from dockyard.replication.applier import Applier
from dockyard.replication.replications import Replications
from dockyard.replication.sender import Sender
from dockyard.scanning.database import VulnDatabase
from dockyard.scanning.policy import ScanPolicies
from dockyard.scanning.scanner import Scanner
from dockyard.settings import Settings
from dockyard.signing.trust import Trust
from dockyard.storage.stores import BlobStores
from dockyard.tasks.base_image_triggers import BaseImageTriggers
from dockyard.tasks.definitions import Tasks
from dockyard.tasks.run_logs import RunLogs
from dockyard.tasks.runs import Runs
from dockyard.tasks.signed_urls import TaskUrls
from dockyard.tasks.source_triggers import SourceTriggers
from dockyard.tasks.sources import BuildSources
from dockyard.tasks.task_runs import TaskRuns
from dockyard.tasks.timers import TaskTimers
from dockyard.tiers.quotas import StorageQuota
from dockyard.tiers.usage import TierAccessLimits, Usages
from dockyard.webhooks.model import Webhooks
from dockyard.webhooks.regional import ImageRegions


@dataclass
class Services:
    settings: Settings
    clock: Clock
    box: SecretBox
    meta: Metadata
    stores: BlobStores
    registries: Registries
    blobs: Blobs
    uploads: Uploads
    garbage: GarbageCollector
    manifests: Manifests
    listings: Listings
    properties: Properties
    referrers: Referrers
    keys: SigningKeys
    tokens: TokenSigner
    authenticator: Authenticator
    administration: Administration
    login_guard: LoginGuard
    logins: Logins
    external_issuers: ExternalIssuers
    outbox: Outbox
    management_access: ManagementAccess
    # Reads the API's middleware and metrics make, built here so no API module builds a
    # store: the registries' network policies (every request), the database's gauges.
    network_policies: NetworkStore
    monitoring: MonitoringStore
    # The features' services, set by their `Feature.services` hooks (not the kernel's):
    # tiers, audit, webhooks, mirroring, the image lifecycle, encryption, quarantine, the
    # management API.
    usages: Usages = field(init=False)
    audit: AuditLog = field(init=False)
    webhooks: Webhooks = field(init=False)
    importer: Importer = field(init=False)
    cache_rules: CacheRules = field(init=False)
    pull_through: PullThrough = field(init=False)
    retention: Retention = field(init=False)
    purge: Purge = field(init=False)
    purge_schedules: PurgeSchedules = field(init=False)
    soft_delete: SoftDelete = field(init=False)
    registry_keys: RegistryKeys = field(init=False)
    quarantine: Quarantine = field(init=False)
    replications: Replications = field(init=False)
    replication_applier: Applier = field(init=False)
    replication_sender: Sender = field(init=False)
    image_regions: ImageRegions = field(init=False)  # where webhooks' images are (replication)
    vuln_db: VulnDatabase = field(init=False)
    scanner: Scanner = field(init=False)
    scan_policies: ScanPolicies = field(init=False)
    build_sources: BuildSources = field(init=False)
    run_logs: RunLogs = field(init=False)
    task_urls: TaskUrls = field(init=False)
    tasks: Tasks = field(init=False)
    task_timers: TaskTimers = field(init=False)
    runs: Runs = field(init=False)
    task_runs: TaskRuns = field(init=False)
    source_triggers: SourceTriggers = field(init=False)
    base_image_triggers: BaseImageTriggers = field(init=False)
    trust: Trust = field(init=False)
    operations: Operations = field(init=False)
    registry_resources: RegistryResources = field(init=False)

    def close(self) -> None:
        self.meta.close()


def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """`clock`: the time every part reads (default a `HybridClock`, tests pass others)."""
    clock = clock or HybridClock()
    meta = Metadata(settings.database_url, clock, read_cache=settings.metadata.read_cache)
    stores = BlobStores.from_settings(settings)
    registries = Registries(meta, settings.registry.default_name, region=settings.region_name)
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
    outbox = Outbox(
        meta,
        clock,
        retry_first=timedelta(seconds=settings.outbox.retry_first_seconds),
        retry_max=timedelta(seconds=settings.outbox.retry_max_seconds),
        poll_seconds=settings.outbox.poll_seconds,
        idle_seconds=settings.outbox.idle_seconds,
    )
    services = Services(
        settings=settings,
        clock=clock,
        box=box,
        meta=meta,
        stores=stores,
        registries=registries,
        blobs=blobs,
        uploads=uploads,
        garbage=GarbageCollector(meta, stores, uploads, clock, settings.gc.lock_share),
        manifests=manifests,
        listings=Listings(meta),
        properties=Properties(meta),
        referrers=Referrers(meta),
        keys=keys,
        tokens=tokens,
        authenticator=authenticator,
        administration=Administration(meta, box, clock, TierAccessLimits()),
        login_guard=login_guard,
        logins=Logins(meta, authenticator, tokens, login_guard, external_issuers),
        external_issuers=external_issuers,
        outbox=outbox,
        management_access=ManagementAccess(meta),
        network_policies=NetworkStore(meta),
        monitoring=MonitoringStore(meta),
    )
    contributed = {f.name for f in fields(Services) if not f.init}
    for feature in FEATURES:
        for name, service in feature.services(services).items():
            if name not in contributed:
                raise TypeError(f"feature {feature.name}: Services has no feature field {name}")
            setattr(services, name, service)
    for feature in FEATURES:
        policies.pulls.extend(feature.pull_policies(services))
        policies.pushes.extend(feature.push_policies(services))
        policies.holds.extend(feature.push_holds(services))
    return services
