"""The outbox events' wire form: each class writes the row every earlier version wrote
for its change, and reads such rows back as itself."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.core import events
from dockyard.metadata.outbox import EventRecord

WHEN = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
D = "sha256:" + "a" * 64
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HELM = "application/vnd.cncf.helm.config.v1+json"
ORIGIN = events.Origin(
    id="r1", host="reg.example", method="PUT", useragent="docker", identity="ci", ip="10.0.0.7"
)
REQUEST = {
    "request": {"id": "r1", "host": "reg.example", "method": "PUT", "useragent": "docker"},
    "caller": {"identity": "ci", "ip": "10.0.0.7"},
}
COMMON = {"registry_id": 3, "repository": "team/app"}

CASES = [
    (
        events.ManifestPushed(**COMMON, digest=D, size=12, media_type=MANIFEST, origin=ORIGIN),
        "push",
        {"repository": "team/app", "digest": D, "mediaType": MANIFEST, "size": 12, **REQUEST},
    ),
    (
        events.TagMoved(
            **COMMON, digest=D, size=12, media_type=MANIFEST, config_media_type=HELM, tag="1.0"
        ),
        "push",
        {
            "repository": "team/app",
            "digest": D,
            "mediaType": MANIFEST,
            "size": 12,
            "tag": "1.0",
            "configMediaType": HELM,
        },
    ),
    (
        events.Untagged(**COMMON, digest=D, tag="v1", origin=ORIGIN),
        "untag",
        {"repository": "team/app", "digest": D, "tag": "v1", **REQUEST},
    ),
    (
        events.ManifestDeleted(**COMMON, digest=D, tags=("v1", "latest"), media_type=MANIFEST),
        "delete",
        {"repository": "team/app", "digest": D, "tags": ["v1", "latest"], "mediaType": MANIFEST},
    ),
    (
        events.RepositoryDeleted(
            **COMMON,
            manifests=(events.DeletedManifest(D, MANIFEST, HELM), events.DeletedManifest(D)),
            tags=("v1",),
            origin=ORIGIN,
        ),
        "delete",
        {
            "repository": "team/app",
            "manifestsDeleted": [D, D],
            "tagsDeleted": ["v1"],
            "manifests": [
                {"digest": D, "mediaType": MANIFEST, "configMediaType": HELM},
                {"digest": D},
            ],
            **REQUEST,
        },
    ),
    (
        events.LocksChanged(**COMMON, tag="v1", changes={"deleteEnabled": False}),
        "lock",
        {"repository": "team/app", "tag": "v1", "changeableAttributes": {"deleteEnabled": False}},
    ),
    (
        events.BlobDeleted(**COMMON, digest=D),
        "blob_delete",
        {"digest": D},
    ),
    (
        events.QuarantineChanged(**COMMON, digest=D, size=5, tag="1", origin=ORIGIN),
        "quarantine",
        {"repository": "team/app", "digest": D, "size": 5, "tag": "1", **REQUEST},
    ),
    (
        events.ScanCompleted(
            **COMMON,
            digest=D,
            worst="high",
            findings=2,
            counts={"high": 1, "medium": 1},
            report_digest=D,
        ),
        "scan",
        {
            "repository": "team/app",
            "digest": D,
            "worst": "high",
            "findings": 2,
            "counts": {"high": 1, "medium": 1},
            "reportDigest": D,
        },
    ),
]


@pytest.mark.parametrize(("event", "action", "payload"), CASES)
def test_each_event_writes_its_row_and_reads_back(
    event: events.Event, action: str, payload: dict
) -> None:
    assert event.to_row() == (3, action, "team/app", payload)
    stored = events.from_row(EventRecord(9, 3, action, "team/app", payload, WHEN))
    assert stored == events.Envelope(9, WHEN, event)


def test_rows_of_earlier_versions_read() -> None:
    """A repository delete written before media types were kept names digests only."""
    row = EventRecord(
        1, 3, "delete", "a", {"repository": "a", "manifestsDeleted": [D], "tagsDeleted": []}, WHEN
    )
    deleted = events.from_row(row).event
    assert deleted == events.RepositoryDeleted(
        registry_id=3, repository="a", manifests=(events.DeletedManifest(D),), tags=()
    )


def test_an_unknown_action_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown outbox action"):
        events.from_row(EventRecord(1, 3, "teleport", "a", {}, WHEN))


def test_subscriptions_name_stored_actions() -> None:
    assert events.actions((events.Event,)) is None
    assert events.actions((events.TagMoved, events.RepositoryDeleted)) == {"push", "delete"}
