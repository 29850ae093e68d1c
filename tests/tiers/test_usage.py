"""Tiers, usage and storage quotas (`tiers.tiers`, `tiers.usage`, `tiers.quotas`, and the
quota checks of `core.uploads`): storage use counted exactly through pushes, garbage
collection and soft delete; downgrades refused with their reasons; pushes over quota
refused with nothing left behind, concurrent ones included; the tier's counts and
features refused past its limits by the operations every surface calls, concurrent
creates included; on a real SQLite `Metadata` and filesystem blob stores."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import func, select

from dockyard.auth.network import DefaultAction
from dockyard.common.errors import BlobUploadUnknown, QuotaExceeded, RequestInvalid, TierLimit
from dockyard.core.garbage import GarbageCollector
from dockyard.core.uploads import Uploads
from dockyard.lifecycle.retention import Retention
from dockyard.lifecycle.soft_delete import SoftDelete
from dockyard.management.registry_resources import NetworkRuleSet, RegistryChange
from dockyard.metadata import schema as t
from dockyard.metadata.network import NetworkWrites
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.usage import StorageRecord, TierRecord
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings
from dockyard.storage.stores import BlobStores
from dockyard.tiers.quotas import StorageQuota, quota_of
from dockyard.tiers.sizes import format_size, parse_size
from dockyard.tiers.tiers import BASIC, PREMIUM, STANDARD, TIB, TIERS, tier_named
from dockyard.tiers.usage import Usage, Usages, misfits

if TYPE_CHECKING:
    from fake_clock import FakeClock

REPO = "app"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def body(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(0)  # let concurrent uploads interleave
        yield chunk


@pytest.fixture
def uploads(meta: Metadata, stores: BlobStores, clock: FakeClock) -> Uploads:
    return Uploads(meta, stores, clock, StorageQuota(meta))


@pytest.fixture
def usages(meta: Metadata) -> Usages:
    return Usages(meta)


def size_used(usages: Usages, registry: RegistryRecord) -> int:
    return next(u.current_value for u in usages.usage(registry) if u.name == "Size")


def summed(meta: Metadata, registry: RegistryRecord) -> int:
    """The sum of the registry's blob rows, as the counter must always equal it."""
    with meta.engine.connect() as conn:
        query = select(func.coalesce(func.sum(t.blobs.c.size), 0)).where(
            t.blobs.c.registry_id == registry.id
        )
        return conn.execute(query).scalar_one()


def push(uploads: Uploads, registry: RegistryRecord, data: bytes, repo: str = REPO) -> str:
    digest = digest_of(data)
    asyncio.run(uploads.upload_whole(registry, repo, digest, body(data), len(data)))
    return digest


def leftovers(meta: Metadata, stores: BlobStores, registry: RegistryRecord) -> tuple:
    """Upload sessions and upload data left behind."""
    store = stores.for_registry(registry.name)
    return meta.upload_ids(), list(store.upload_ids())


# -- the tiers ----------------------------------------------------------------------------


def test_the_tiers_carry_the_reference_limits() -> None:
    assert (BASIC.included_storage, STANDARD.included_storage) == (10 << 30, 100 << 30)
    assert PREMIUM.included_storage == 500 << 30
    assert (BASIC.storage_limit, PREMIUM.storage_limit) == (40 * TIB, 100 * TIB)
    assert (BASIC.webhooks, STANDARD.webhooks, PREMIUM.webhooks) == (2, 10, 500)
    assert (BASIC.tokens, STANDARD.scope_maps, PREMIUM.tokens) == (100, 500, 50_000)
    assert (STANDARD.ip_rules, PREMIUM.ip_rules) == (0, 200)
    assert tier_named("standard") is STANDARD
    with pytest.raises(RequestInvalid, match="Basic, Standard or Premium"):
        tier_named("Classic")


def test_sizes_as_people_write_them() -> None:
    assert parse_size("500GiB") == 500 << 30
    assert parse_size("1.5 TiB") == int(1.5 * (1 << 40))
    assert parse_size("10GB") == 10**10
    assert parse_size("1048576") == 1 << 20
    with pytest.raises(RequestInvalid):
        parse_size("lots")
    assert format_size(3 << 30) == "3.0 GiB"
    assert format_size(12) == "12 B"


# -- usage --------------------------------------------------------------------------------


def test_a_new_registry_reports_acr_usage_lines(usages: Usages, registry: RegistryRecord) -> None:
    assert usages.usage(registry) == [
        Usage("Size", 100 * TIB, 0, "Bytes"),
        Usage("Webhooks", 500, 0, "Count"),
        Usage("Geo-replications", -1, 1, "Count"),
        Usage("IPRules", 200, 0, "Count"),
        Usage("VNetRules", 100, 0, "Count"),
        Usage("PrivateEndpointConnections", 200, 0, "Count"),
        Usage("ScopeMaps", 50_000, 0, "Count"),
        Usage("Tokens", 50_000, 0, "Count"),
    ]


def test_storage_use_counts_each_blob_once_and_follows_collection(
    meta: Metadata,
    stores: BlobStores,
    clock: FakeClock,
    uploads: Uploads,
    usages: Usages,
    registry: RegistryRecord,
) -> None:
    push(uploads, registry, b"a" * 1000)
    push(uploads, registry, b"a" * 1000, repo="other")  # the same blob in a second repository
    push(uploads, registry, b"b" * 300)
    assert size_used(usages, registry) == 1300 == summed(meta, registry)
    with meta.transaction() as tx:
        tx.unlink_blob(tx.repository_id(registry.id, REPO), digest_of(b"b" * 300))
    collector = GarbageCollector(meta, stores, uploads, clock)
    collector.collect(timedelta(0), timedelta(days=1), registry)
    assert size_used(usages, registry) == 1000 == summed(meta, registry)


def test_soft_deleted_images_keep_counting_until_they_expire(
    meta: Metadata,
    stores: BlobStores,
    clock: FakeClock,
    uploads: Uploads,
    usages: Usages,
    registry: RegistryRecord,
) -> None:
    from core_registry import Registry  # the image pushes of the garbage collection tests

    pushed = Registry(meta, stores, clock, registry)
    soft_delete = SoftDelete(meta, clock)
    soft_delete.update(registry, enabled=True, days=1)
    digest = pushed.image("app", "v1", b'{"config": 1}', b"layer" * 100)
    used = size_used(usages, registry)
    assert used == len(b'{"config": 1}') + 500
    pushed.manifests.delete(registry, "app", digest)
    pushed.collect(timedelta(0))
    assert size_used(usages, registry) == used == summed(meta, registry)
    clock.advance(timedelta(days=2))
    assert soft_delete.expire(registry) == 2  # the manifest and its tag
    pushed.collect(timedelta(0))
    assert size_used(usages, registry) == 0 == summed(meta, registry)


# -- changes of tier ----------------------------------------------------------------------


def test_a_downgrade_the_use_does_not_fit_is_refused_with_every_reason(
    meta: Metadata, clock: FakeClock, usages: Usages, registry: RegistryRecord
) -> None:
    with meta.transaction() as tx:
        NetworkWrites(tx).add_rule(registry.id, "203.0.113.7", 200)
        NetworkWrites(tx).set_access(registry.id, default_action=DefaultAction.DENY)
    Retention(meta, None, clock).update(registry, enabled=True)  # type: ignore[arg-type]
    with pytest.raises(TierLimit) as refused:
        usages.change_sku(registry, "Standard")
    message = refused.value.message
    assert "cannot move to Standard" in message
    assert "1 IPRules and Standard allows 0" in message
    assert "network rules" in message and "retention policy" in message
    assert usages.tier(registry) is PREMIUM

    Retention(meta, None, clock).update(registry, enabled=False)  # type: ignore[arg-type]
    with meta.transaction() as tx:
        NetworkWrites(tx).remove_rule(registry.id, "203.0.113.7")
        NetworkWrites(tx).set_access(registry.id, default_action=DefaultAction.ALLOW)
    assert usages.change_sku(registry, "basic") is BASIC
    assert usages.tier(registry) is BASIC
    assert usages.usage(registry)[0] == Usage("Size", 40 * TIB, 0, "Bytes")


def test_storage_past_the_target_tier_refuses_a_downgrade_unless_the_quota_is_its_own() -> None:
    found = TierRecord(StorageRecord("Premium", None, 50 * TIB), False, False, False, False, False)
    assert misfits(
        STANDARD, found, {"tokens": 3, "scope_maps": 0, "ip_rules": 0, "webhooks": 0}
    ) == ["it stores 50.0 TiB and Standard allows 40.0 TiB"]
    own = TierRecord(
        StorageRecord("Premium", 60 * TIB, 50 * TIB), False, False, False, False, False
    )
    assert (
        misfits(STANDARD, own, {"tokens": 3, "scope_maps": 0, "ip_rules": 0, "webhooks": 0}) == []
    )
    crowded = {"tokens": 101, "scope_maps": 100, "ip_rules": 0, "webhooks": 3}
    assert misfits(BASIC, own, crowded) == [
        "it has 3 Webhooks and Basic allows 2",
        "it has 101 Tokens and Basic allows 100",
    ]


def test_a_storage_quota_of_its_own_replaces_the_tier_limit(
    uploads: Uploads, usages: Usages, registry: RegistryRecord
) -> None:
    push(uploads, registry, b"x" * 2000)
    with pytest.raises(TierLimit, match="more than a quota of 1000 B"):
        usages.set_storage_quota(registry, 1000)
    usages.set_storage_quota(registry, 5000)
    assert usages.usage(registry)[0] == Usage("Size", 5000, 2000, "Bytes")
    usages.change_sku(registry, "Standard")  # the registry's own quota stays
    assert quota_of(StorageRecord("Standard", 5000, 0)) == usages.usage(registry)[0].limit
    usages.set_storage_quota(registry, None)
    assert usages.usage(registry)[0].limit == STANDARD.storage_limit


# -- quotas on pushes ---------------------------------------------------------------------


def test_a_monolithic_push_over_quota_is_refused_before_storing_anything(
    meta: Metadata, stores: BlobStores, uploads: Uploads, usages: Usages, registry: RegistryRecord
) -> None:
    push(uploads, registry, b"a" * 600)
    usages.set_storage_quota(registry, 1000)
    data = b"b" * 500
    with pytest.raises(QuotaExceeded) as refused:
        push(uploads, registry, data)
    assert "storage quota of registry contoso exceeded: 600 B of 1000 B" in refused.value.message
    assert refused.value.detail == {"quota": 1000, "used": 600, "needed": 500}
    assert size_used(usages, registry) == 600
    assert stores.for_registry(registry.name).stat(digest_of(data)) is None
    assert leftovers(meta, stores, registry) == (set(), [])
    # A blob the registry stores already adds nothing: never refused.
    push(uploads, registry, b"a" * 600, repo="other")
    assert size_used(usages, registry) == 600


def test_chunks_over_quota_end_the_upload_and_leave_nothing(
    meta: Metadata, stores: BlobStores, uploads: Uploads, usages: Usages, registry: RegistryRecord
) -> None:
    usages.set_storage_quota(registry, 1000)

    async def chunked(length: int | None) -> str:
        state = await uploads.start(registry, REPO)
        await uploads.append(registry, REPO, state.id, body(b"c" * 600), 0, 600)
        with pytest.raises(QuotaExceeded):
            await uploads.append(
                registry, REPO, state.id, body(b"d" * 300, b"d" * 300), 600, length
            )
        return state.id

    for length in (600, None):  # a known length refused before, a stream once it crosses
        upload_id = asyncio.run(chunked(length))
        with pytest.raises(BlobUploadUnknown):
            uploads.status(registry, REPO, upload_id)
        assert leftovers(meta, stores, registry) == (set(), [])
    assert size_used(usages, registry) == 0


def test_concurrent_uploads_each_under_the_quota_cannot_pass_it_together(
    meta: Metadata, stores: BlobStores, uploads: Uploads, usages: Usages, registry: RegistryRecord
) -> None:
    usages.set_storage_quota(registry, 1000)
    first, second = b"e" * 600, b"f" * 600

    async def race() -> list[object]:
        one = await uploads.start(registry, REPO)
        two = await uploads.start(registry, REPO)
        return await asyncio.gather(
            uploads.finish(registry, REPO, one.id, digest_of(first), body(first, b""), None),
            uploads.finish(registry, REPO, two.id, digest_of(second), body(second, b""), None),
            return_exceptions=True,
        )

    results = asyncio.run(race())
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 1
    assert size_used(usages, registry) == 600 == summed(meta, registry)
    store = stores.for_registry(registry.name)
    refused = first if isinstance(results[0], QuotaExceeded) else second
    assert store.stat(digest_of(refused)) is None
    assert leftovers(meta, stores, registry) == (set(), [])


# -- what a tier allows adding --------------------------------------------------------------


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    """The whole set of services on a Basic default registry: the limits bind the
    operations the CLI and the management API both call."""
    settings = load_settings(
        None,
        data_dir=tmp_path / "server",
        auth={"enabled": False},
        registry={"default_name": "contoso", "default_sku": "Basic"},
    )
    prepare(settings)
    built = build_services(settings)
    yield built
    built.close()


def default_registry(services: Services) -> RegistryRecord:
    return services.registries.for_host("")


def hook(services: Services, name: str) -> object:
    return services.webhooks.create(
        default_registry(services), name, "http://127.0.0.1:9/hook", ["push"]
    )


def test_a_tier_limits_webhooks_tokens_and_scope_maps(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = default_registry(services)
    admin = services.administration
    monkeypatch.setitem(TIERS, "Basic", replace(BASIC, tokens=1, scope_maps=1))
    hook(services, "first"), hook(services, "second")
    with pytest.raises(TierLimit) as refused:
        hook(services, "third")
    assert refused.value.message == (
        "registry contoso has 2 webhooks, as many as its Basic tier allows (2): delete one "
        "or move the registry to Standard (10)"
    )
    admin.put_scope_map(registry, "pullers", ["repositories/app/content/read"])
    admin.put_scope_map(registry, "pullers", ["repositories/app/metadata/read"])  # a change
    with pytest.raises(TierLimit, match="has 1 scope maps"):
        admin.put_scope_map(registry, "pushers", ["repositories/app/content/write"])
    admin.create_token(registry, "puller1", "pullers")
    with pytest.raises(TierLimit, match="has 1 tokens"):
        admin.create_token(registry, "puller2", "pullers")
    counts = {u.name: u.current_value for u in services.usages.usage(registry)}
    assert (counts["Webhooks"], counts["ScopeMaps"], counts["Tokens"]) == (2, 1, 1)

    services.usages.change_sku(registry, "Standard")
    hook(services, "third")


def test_a_tier_refuses_turning_on_what_it_does_not_allow(services: Services) -> None:
    registry = default_registry(services)
    resources = services.registry_resources
    placement = resources.placement_of(registry)
    with pytest.raises(TierLimit, match="Basic tier of registry contoso does not allow anonymous"):
        services.administration.set_anonymous_pull(registry, True)
    services.administration.set_anonymous_pull(registry, False)  # off is always allowed
    services.usages.change_sku(registry, "Standard")
    services.administration.set_anonymous_pull(registry, True)
    refusals = {
        "retention policy": lambda: services.retention.update(registry, enabled=True),
        "network rules": lambda: resources.update(
            placement, "contoso", RegistryChange(public_network_access=False)
        ),
        "move the registry to Premium": lambda: resources.update(
            placement,
            "contoso",
            RegistryChange(network_rule_set=NetworkRuleSet("Allow", ("203.0.113.7",))),
        ),
    }
    for expected, attempt in refusals.items():
        with pytest.raises(TierLimit, match=expected):
            attempt()
    found = resources.get(placement, "contoso")
    assert found.public_network_access and found.network_rule_set.ip_rules == ()
    assert not found.retention.enabled
    services.usages.change_sku(registry, "Premium")
    changed = resources.update(
        placement,
        "contoso",
        RegistryChange(network_rule_set=NetworkRuleSet("Deny", ("203.0.113.7",))),
    )
    assert changed.network_rule_set == NetworkRuleSet("Deny", ("203.0.113.7",))
    assert services.retention.update(registry, enabled=True).enabled


def test_concurrent_creates_cannot_both_take_the_last_place(services: Services) -> None:
    """Both creates start while another writer holds the writers' lock, so both would
    find one place left if they counted before their transaction."""
    hook(services, "first")
    results: list[object] = []

    def create(name: str) -> None:
        try:
            results.append(hook(services, name))
        except TierLimit as exc:
            results.append(exc)

    threads = [threading.Thread(target=create, args=(name,)) for name in ("racer1", "racer2")]
    with services.meta.transaction():
        for thread in threads:
            thread.start()
        time.sleep(0.5)
    for thread in threads:
        thread.join()
    assert sum(isinstance(r, TierLimit) for r in results) == 1
    assert len(services.webhooks.list(default_registry(services))) == 2


def test_a_registry_the_tier_refuses_is_not_made_and_a_downgrade_may_turn_off_with_it(
    services: Services,
) -> None:
    resources = services.registry_resources
    placement = resources.placement_of(default_registry(services))
    with pytest.raises(TierLimit, match="does not allow anonymous pull"):
        resources.create(
            placement,
            "freebie",
            "westeurope",
            RegistryChange(sku="Basic", anonymous_pull_enabled=True),
        )
    assert resources.find(placement, "freebie") is None
    assert "freebie" not in [r.name for r in services.meta.registries()]

    made = resources.create(
        placement, "shared", "westeurope", RegistryChange(sku="Basic", anonymous_pull_enabled=False)
    )
    up = resources.update(
        placement, "shared", RegistryChange(sku="Standard", anonymous_pull_enabled=True)
    )
    assert (up.sku, up.anonymous_pull_enabled) == ("Standard", True)
    down = resources.update(
        placement, "shared", RegistryChange(sku="Basic", anonymous_pull_enabled=False)
    )
    assert (down.sku, down.anonymous_pull_enabled) == ("Basic", False)
    assert made.record == down.record
