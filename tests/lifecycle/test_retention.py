"""`dockyard.lifecycle.retention`: which untagged manifests the retention policy deletes and
when, on a clock the test moves; re-tagging and turning the policy off cancel; locks,
parent indexes and live subjects keep a manifest; the repository goes with its last
manifest, and garbage collection then frees the blobs."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from core_registry import CONFIG, LAYER, Registry, digest_of
from sqlalchemy import select

from dockyard.common.errors import RequestInvalid
from dockyard.core.manifest_formats import OCI_INDEX, OCI_MANIFEST
from dockyard.core.properties import Properties
from dockyard.lifecycle.retention import Retention
from dockyard.metadata import schema as t
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

if TYPE_CHECKING:
    from fake_clock import FakeClock

DAY = timedelta(days=1)


class Lifecycle(Registry):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.retention = Retention(self.meta, self.manifests, self.clock)

    def index(self, repo: str, reference: str, *children: str) -> str:
        body = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": child,
                        "size": self.meta.manifest_by_digest(self.record.id, repo, child).size,
                    }
                    for child in children
                ],
            }
        )
        return self.manifests.put(self.record, repo, reference, body, OCI_INDEX).digest

    def apply(self) -> list[tuple[str, str]]:
        report = self.retention.apply(self.record)
        return sorted(report.deleted)

    def exists(self, repo: str, digest: str) -> bool:
        return self.meta.manifest_by_digest(self.record.id, repo, digest) is not None

    def events(self) -> list[tuple[str, dict]]:
        with self.meta.connection() as conn:
            rows = conn.execute(
                select(t.events.c.action, t.events.c.payload).order_by(t.events.c.id)
            )
            return [(action, orjson.loads(payload)) for action, payload in rows]


@pytest.fixture
def life(
    meta: Metadata, stores: BlobStores, clock: FakeClock, registry: RegistryRecord
) -> Lifecycle:
    return Lifecycle(meta, stores, clock, registry)


def test_an_untagged_manifest_goes_days_after_its_untag_then_gc_frees_its_blobs(
    life: Lifecycle,
) -> None:
    life.retention.update(life.record, enabled=True, days=7)
    old = life.image("app", "v1", b"config 1", b"layer 1")
    life.clock.advance(DAY)
    new = life.image("app", "v1", b"config 2", b"layer 2")  # moves v1: `old` is untagged
    life.clock.advance(7 * DAY - timedelta(seconds=1))
    assert life.apply() == []
    life.clock.advance(timedelta(seconds=1))
    assert life.apply() == [("app", old)]
    assert not life.exists("app", old) and life.exists("app", new)
    assert life.events()[-1] == (
        "delete",
        {
            "repository": "app",
            "digest": old,
            "tags": [],
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "configMediaType": "application/vnd.oci.image.config.v1+json",
        },
    )
    life.clock.advance(timedelta(seconds=1))
    life.collect(grace=timedelta(0))
    assert not life.stored(b"layer 1") and life.stored(b"layer 2")


def test_the_repository_goes_with_its_last_manifest(life: Lifecycle) -> None:
    life.retention.update(life.record, enabled=True, days=0)
    digest = life.image("app", "v1", b"config", b"layer")
    life.manifests.untag(life.record, "app", "v1")
    assert life.apply() == [("app", digest)]
    assert not life.meta.repository_exists(life.record.id, "app")


def test_retagging_or_disabling_cancels_and_only_later_untags_count(life: Lifecycle) -> None:
    before = life.image("app", "before", b"config 0", b"layer 0")
    life.manifests.untag(life.record, "app", "before")  # untagged before the policy
    life.clock.advance(DAY)
    life.retention.update(life.record, enabled=True, days=1)
    retagged = life.image("app", "v1", b"config 1", b"layer 1")
    life.manifests.untag(life.record, "app", "v1")
    life.clock.advance(DAY / 2)
    body = life.meta.manifest_by_digest(life.record.id, "app", retagged).body
    life.manifests.put(life.record, "app", "again", body, OCI_MANIFEST)
    disabled = life.image("app", "v2", b"config 2", b"layer 2")
    life.manifests.untag(life.record, "app", "v2")
    life.retention.update(life.record, enabled=False)
    life.clock.advance(3 * DAY)
    assert life.apply() == []
    life.retention.update(life.record, enabled=True)  # a new period: `disabled` is older
    life.clock.advance(3 * DAY)
    assert life.apply() == []
    assert all(life.exists("app", d) for d in (before, retagged, disabled))


def test_locks_parent_indexes_and_live_subjects_keep_a_manifest(life: Lifecycle) -> None:
    life.retention.update(life.record, enabled=True, days=0)
    locked = life.image("app", "locked", b"config 1", b"layer 1")
    Properties(life.meta).update_manifest(life.record, "app", locked, {"delete_enabled": False})
    life.manifests.untag(life.record, "app", "locked")
    child = life.image("app", "child", b"config 2", b"layer 2")
    index = life.index("app", "multi", child)
    life.manifests.untag(life.record, "app", "child")
    subject = life.image("app", "subject", b"config 3", b"layer 3")
    referrer_body = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/example.sbom",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": life.blob(b"{}", "app"),
                "size": 2,
            },
            "layers": [],
            "subject": {
                "mediaType": OCI_MANIFEST,
                "digest": subject,
                "size": life.meta.manifest_by_digest(life.record.id, "app", subject).size,
            },
        }
    )
    referrer = life.manifests.put(life.record, "app", "sbom", referrer_body, OCI_MANIFEST).digest
    life.manifests.untag(life.record, "app", "sbom")
    assert life.apply() == []
    # The index untagged and deleted: its child's clock starts then, and goes next run.
    life.manifests.untag(life.record, "app", "multi")
    assert life.apply() == [("app", index)]
    assert life.apply() == [("app", child)]
    assert life.exists("app", locked) and life.exists("app", referrer)


def test_a_manifest_pushed_by_digest_and_never_tagged_is_not_scheduled(life: Lifecycle) -> None:
    life.retention.update(life.record, enabled=True, days=0)
    body = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": CONFIG, "digest": life.blob(b"config"), "size": 6},
            "layers": [{"mediaType": LAYER, "digest": life.blob(b"layer"), "size": 5}],
        }
    )
    digest = life.manifests.put(life.record, "app", digest_of(body), body, OCI_MANIFEST).digest
    life.clock.advance(30 * DAY)
    assert life.apply() == []
    assert life.exists("app", digest)


def test_days_are_checked(life: Lifecycle) -> None:
    with pytest.raises(RequestInvalid, match="0 to 365"):
        life.retention.update(life.record, days=366)
    policy = life.retention.update(life.record, enabled=True, days=30)
    assert (policy.enabled, policy.days) == (True, 30)
