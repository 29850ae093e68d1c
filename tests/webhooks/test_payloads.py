"""Which notices an outbox event gives a webhook, and which scopes match them: pure
functions of the event, checked without a server (the integration tests send them)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.core.events import Envelope, from_row
from dockyard.metadata.outbox import EventRecord
from dockyard.webhooks.payloads import HELM_CONFIG, notices
from dockyard.webhooks.scopes import ScopeInvalid, parse_scope

WHEN = datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC)
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REQUEST = {"id": "r1", "host": "reg.example", "method": "PUT", "useragent": "docker"}


def event(action: str, payload: dict, event_id: int = 7) -> Envelope:
    """The event a stored row of this action and payload reads back as."""
    return from_row(EventRecord(event_id, 1, action, payload["repository"], payload, WHEN))


ACR_QUARANTINE_TARGET = {
    "size": 1791,
    "digest": "sha256:91ef6",
    "length": 1791,
    "repository": "helloworld",
    "tag": "1",
}
PUSHED = {
    "repository": "helloworld",
    "digest": "sha256:91ef6",
    "size": 1791,
    "tag": "1",
    "request": REQUEST,
}


def test_a_push_gives_push_and_acr_s_quarantine_payload() -> None:
    push, quarantine = notices(event("push", PUSHED))
    assert (push.action, quarantine.action) == ("push", "quarantine")
    assert quarantine.body["timestamp"] == "2026-12-01T10:00:00.123456Z"
    assert quarantine.body["target"] == ACR_QUARANTINE_TARGET
    assert quarantine.body["request"] == REQUEST
    assert push.id != quarantine.id


def test_a_held_push_gives_only_quarantine() -> None:
    [notice] = notices(event("push", {**PUSHED, "held": True}))
    assert notice.action == "quarantine"
    assert notice.body["target"] == ACR_QUARANTINE_TARGET


def test_a_release_from_quarantine_gives_push_and_other_state_changes_nothing() -> None:
    passed = {**PUSHED, "quarantineState": "Passed"}
    [notice] = notices(event("quarantine", {**passed, "released": True}))
    assert notice.action == "push"
    assert notice.body["target"] == ACR_QUARANTINE_TARGET
    assert notices(event("quarantine", passed)) == []
    assert notices(event("quarantine", {**PUSHED, "quarantineState": "Failed"})) == []


def test_a_repository_delete_gives_one_delete_per_manifest_and_charts_their_own() -> None:
    payload = {
        "repository": "charts/app",
        "manifestsDeleted": ["sha256:a", "sha256:b"],
        "tagsDeleted": ["1.0.0"],
        "manifests": [
            {"digest": "sha256:a", "mediaType": MANIFEST, "configMediaType": HELM_CONFIG},
            {"digest": "sha256:b", "mediaType": MANIFEST},
        ],
    }
    found = notices(event("delete", payload))
    assert [n.action for n in found] == ["delete", "chart_delete", "delete"]
    assert [n.body["target"]["digest"] for n in found] == ["sha256:a", "sha256:a", "sha256:b"]
    assert found[1].body["target"]["name"] == "app"
    assert found[1].body["target"]["version"] == "1.0.0"
    assert len({n.id for n in found}) == 3
    # The same event gives the same ids again: a retry is recognisable.
    assert [n.id for n in notices(event("delete", payload))] == [n.id for n in found]
    assert notices(event("delete", payload, event_id=8))[0].id != found[0].id


def test_tag_deletes_and_other_events_give_nothing() -> None:
    assert notices(event("untag", {"repository": "a", "digest": "sha256:a", "tag": "v1"})) == []
    assert notices(event("lock", {"repository": "a"})) == []


@pytest.mark.parametrize(
    ("scope", "repository", "tags", "matches"),
    [
        ("", "any/thing", (), True),
        ("app:v1", "app", ("v1",), True),
        ("app:v1", "app", ("v2",), False),
        ("app:v1", "app", (), False),
        ("app", "app", ("latest",), True),
        ("app", "app", ("v1",), False),
        ("app:*", "app", (), True),
        ("app:*", "app2", ("v1",), False),
        ("team/*:v*", "team/web/api", ("v2", "x"), True),
        ("team/*:v*", "team/web", ("latest",), False),
        ("team/*:v*", "other/web", ("v1",), False),
    ],
)
def test_scopes(scope: str, repository: str, tags: tuple[str, ...], matches: bool) -> None:
    assert parse_scope(scope).matches(repository, tags) is matches


@pytest.mark.parametrize("scope", ["App:v1", "app:v 1", "app:", "a" * 256])
def test_scopes_acr_refuses(scope: str) -> None:
    with pytest.raises(ScopeInvalid):
        parse_scope(scope)


def test_a_stored_scan_gives_dockyard_s_scan_action() -> None:
    scanned = {
        "repository": "app/web",
        "digest": "sha256:91ef6",
        "worst": "high",
        "findings": 2,
        "counts": {"high": 1, "medium": 1},
        "reportDigest": "sha256:7e1a",
    }
    [notice] = notices(event("scan", scanned))
    assert (notice.action, notice.repository, notice.tags) == ("scan", "app/web", ())
    assert notice.body["target"] == {"digest": "sha256:91ef6", "repository": "app/web"}
    assert notice.body["scan"] == {
        "worst": "high",
        "findings": 2,
        "counts": {"high": 1, "medium": 1},
        "reportDigest": "sha256:7e1a",
    }
    assert "request" not in notice.body
