"""Quarantine through the registry API, in process, with logins on, on SQLite and on
PostgreSQL: ACR's walkthrough (Azure/acr docs/preview/quarantine) step by step. With
the policy on, a push is pulled by a plain puller neither by tag (`MANIFEST_UNKNOWN`)
nor by digest (`DENIED`, "The operation is disallowed."), but by a quarantine reader;
only a quarantine writer may PATCH its `quarantineState` (with `quarantineDetails` in
ACR's schema); `Passed` opens it, `Failed` keeps it shut; `/acr/v1` shows both fields.
The webhooks each change gives are read from the outbox as the dispatcher reads them."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import images
import orjson
import pytest
from endpoint import AppEndpoint
from sqlalchemy import select

from dockyard.core.events import from_row
from dockyard.management.registry_resources import RegistryChange
from dockyard.metadata import schema as t
from dockyard.metadata.outbox import EventRecord
from dockyard.metadata.records import RegistryRecord
from dockyard.quarantine.states import DISALLOWED
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings
from dockyard.webhooks.payloads import notices

HOST = "localhost:5000"
ADMIN_PASSWORD = "admin-secret-for-quarantine"
DETAILS = orjson.dumps(
    {
        "scanner": "trivy",
        "state": "scan passed",
        "result": {"version": "0.0.1", "summary": [{"severity": "High", "count": 0}]},
        "link": "https://scanner.example/report/1",
    }
).decode()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class People:
    """The callers of ACR's walkthrough: an admin (who pushes), a plain puller, a
    quarantine reader (the scanner's pull account) and a quarantine writer."""

    def __init__(self, services: Services, registry: RegistryRecord) -> None:
        administration = services.administration
        administration.set_admin_user(registry, True, ADMIN_PASSWORD)
        self.admin = basic("dockyard", ADMIN_PASSWORD)
        self.puller = self._identity(services, registry, "puller", "AcrPull")
        self.reader = self._identity(services, registry, "scanner-pull", "AcrQuarantineReader")
        self.writer = self._identity(services, registry, "scanner", "AcrQuarantineWriter")

    @staticmethod
    def _identity(
        services: Services, registry: RegistryRecord, name: str, role: str
    ) -> dict[str, str]:
        identity, secret = services.administration.create_identity(name)
        services.administration.assign_role(registry, name, role)
        return basic(identity.id, secret)


@pytest.fixture(params=["sqlite", "postgresql"])
def endpoint(request: pytest.FixtureRequest, tmp_path) -> Iterator[AppEndpoint]:
    """The app on each database kind (PostgreSQL: a database of the session's server)."""
    database = {}
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").create_database("quarantine", migrated=True)
        database = {"metadata": {"url": url}}
    settings = load_settings(
        None,
        data_dir=tmp_path,
        registry={"default_name": "dockyard", "login_server": HOST},
        **database,
    )
    prepare(settings)
    app = AppEndpoint(build_services(settings), host=HOST)
    yield app
    app.close()


def registry(services: Services) -> RegistryRecord:
    return services.registries.for_host(HOST)


@pytest.fixture
def people(endpoint: AppEndpoint) -> People:
    return People(endpoint.services, registry(endpoint.services))


def set_policy(services: Services, enabled: bool) -> None:
    placement = services.registry_resources.placement_of(registry(services))
    services.registry_resources.update(
        placement, "dockyard", RegistryChange(quarantine_enabled=enabled)
    )


def push(endpoint: AppEndpoint, people: People, repo: str, tag: str = "1") -> str:
    manifest, _ = endpoint.push_small_image(repo, tag, people.admin)
    return images.sha256_digest(manifest)


def pull(endpoint: AppEndpoint, who: dict[str, str], repo: str, reference: str):
    with endpoint.client() as http:
        return http.get(
            f"/v2/{repo}/manifests/{reference}",
            headers={**who, "Accept": images.OCI_MANIFEST},
        )


def patch(endpoint: AppEndpoint, who: dict[str, str], repo: str, digest: str, body: object):
    with endpoint.client() as http:
        return http.patch(f"/acr/v1/{repo}/_manifests/{digest}", json=body, headers=who)


def attributes(endpoint: AppEndpoint, who: dict[str, str], repo: str, digest: str) -> dict:
    with endpoint.client() as http:
        found = http.get(f"/acr/v1/{repo}/_manifests/{digest}", headers=who)
    assert found.status_code == 200, found.text
    return found.json()["manifest"]["changeableAttributes"]


def sent(services: Services) -> list[tuple[str, str, str | None]]:
    """(action, digest, tag) of every webhook notice the outbox gives so far."""
    with services.meta.connection() as conn:
        rows = conn.execute(select(t.events).order_by(t.events.c.id)).all()
    found = []
    for row in rows:
        record = EventRecord(
            row.id,
            row.registry_id,
            row.action,
            row.repository,
            orjson.loads(row.payload),
            row.created_at,
        )
        for notice in notices(from_row(record)):
            target = notice.body["target"]
            found.append((notice.action, target["digest"], target.get("tag")))
    return found


def test_acr_walkthrough_quarantine_pass(endpoint: AppEndpoint, people: People) -> None:
    services = endpoint.services
    set_policy(services, True)
    digest = push(endpoint, people, "helloworld")

    # A plain puller: the tag names nothing, the digest is disallowed.
    by_tag = pull(endpoint, people.puller, "helloworld", "1")
    assert by_tag.status_code == 404
    assert by_tag.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    by_digest = pull(endpoint, people.puller, "helloworld", digest)
    assert by_digest.status_code == 403
    assert by_digest.json()["errors"][0] == {
        "code": "DENIED",
        "message": DISALLOWED,
        "detail": {"name": "helloworld", "reference": digest},
    }
    # The quarantine reader (and the writer, and the admin user) pull it.
    for who in (people.reader, people.writer, people.admin):
        assert pull(endpoint, who, "helloworld", digest).status_code == 200
        assert pull(endpoint, who, "helloworld", "1").status_code == 200
    assert attributes(endpoint, people.reader, "helloworld", digest)["quarantineState"] == (
        "Quarantined"
    )
    # Only the quarantine webhook went out.
    assert sent(services) == [("quarantine", digest, "1")]

    # Neither the reader nor the puller may set the state; the writer may.
    passed = {"quarantineState": "Passed", "quarantineDetails": DETAILS}
    for who in (people.reader, people.puller):
        refused = patch(endpoint, who, "helloworld", digest, passed)
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"][0]["code"] == "DENIED"
    done = patch(endpoint, people.writer, "helloworld", digest, passed)
    assert done.status_code == 200, done.text
    shown = done.json()["manifest"]["changeableAttributes"]
    assert shown["quarantineState"] == "Passed"
    assert orjson.loads(shown["quarantineDetails"]) == orjson.loads(DETAILS)
    assert shown["readEnabled"] is True  # the locks are still there

    # Open to everyone now, and the push webhook went out.
    assert pull(endpoint, people.puller, "helloworld", "1").status_code == 200
    assert pull(endpoint, people.puller, "helloworld", digest).status_code == 200
    assert sent(services) == [("quarantine", digest, "1"), ("push", digest, "1")]
    # Passing it again changes nothing and sends nothing.
    assert patch(endpoint, people.writer, "helloworld", digest, passed).status_code == 200
    assert len(sent(services)) == 2


def test_failed_keeps_it_shut_and_listings_show_the_states(
    endpoint: AppEndpoint, people: People
) -> None:
    services = endpoint.services
    set_policy(services, True)
    bad = push(endpoint, people, "app", "bad")
    waiting = push(endpoint, people, "app", "waiting")
    failed = {"quarantineState": "Failed", "quarantineDetails": DETAILS}
    assert patch(endpoint, people.writer, "app", bad, failed).status_code == 200
    assert pull(endpoint, people.puller, "app", "bad").status_code == 404
    assert pull(endpoint, people.puller, "app", bad).status_code == 403
    assert pull(endpoint, people.reader, "app", bad).status_code == 200  # to scan again
    assert ("push", bad, "bad") not in sent(services)

    # The listing shows every manifest's state, to whoever may list (as Harbor does).
    with endpoint.client() as http:
        listed = http.get("/acr/v1/app/_manifests", headers=people.puller).json()
        tags = http.get("/v2/app/tags/list", headers=people.puller).json()
    states = {
        m["digest"]: m["changeableAttributes"]["quarantineState"] for m in listed["manifests"]
    }
    assert states == {bad: "Failed", waiting: "Quarantined"}
    assert sorted(tags["tags"]) == ["bad", "waiting"]


def test_an_index_passes_with_its_platform_manifests(endpoint: AppEndpoint, people: People) -> None:
    set_policy(endpoint.services, True)
    index = images.busybox_index()
    with endpoint.client() as http:
        http.headers.update(people.admin)
        for child in index.children:
            for data in child.blobs.values():
                digest = images.sha256_digest(data)
                upload = f"/v2/multi/blobs/uploads/?digest={digest}"
                assert http.post(upload, content=data).status_code == 201
            put = http.put(
                f"/v2/multi/manifests/{child.digest}",
                content=child.manifest,
                headers={"Content-Type": child.media_type},
            )
            assert put.status_code == 201, put.text
        media = {"Content-Type": images.OCI_INDEX}
        put = http.put("/v2/multi/manifests/1", content=index.manifest, headers=media)
        assert put.status_code == 201, put.text
    first = index.children[0].digest
    assert pull(endpoint, people.puller, "multi", first).status_code == 403
    passed = patch(endpoint, people.writer, "multi", index.digest, {"quarantineState": "Passed"})
    assert passed.status_code == 200, passed.text
    with endpoint.client() as http:
        got = http.get(
            "/v2/multi/manifests/1", headers={**people.puller, "Accept": images.OCI_INDEX}
        )
    assert got.status_code == 200 and got.content == index.manifest
    for child in index.children:
        assert pull(endpoint, people.puller, "multi", child.digest).status_code == 200
    assert attributes(endpoint, people.puller, "multi", first)["quarantineState"] == "Passed"


def test_policy_off_sends_push_and_quarantine_and_holds_nothing(
    endpoint: AppEndpoint, people: People
) -> None:
    services = endpoint.services
    digest = push(endpoint, people, "plain")
    assert pull(endpoint, people.puller, "plain", "1").status_code == 200
    assert sent(services) == [("push", digest, "1"), ("quarantine", digest, "1")]
    assert "quarantineState" not in attributes(endpoint, people.puller, "plain", digest)

    # A scanner may mark what is there before the policy goes on (ACR's advice)...
    passed = {"quarantineState": "Passed"}
    assert patch(endpoint, people.writer, "plain", digest, passed).status_code == 200
    other = push(endpoint, people, "plain", "2")
    set_policy(services, True)
    # ...and then what it passed stays open, what it did not is held.
    assert pull(endpoint, people.puller, "plain", "1").status_code == 200
    assert pull(endpoint, people.puller, "plain", other).status_code == 403
    set_policy(services, False)
    assert pull(endpoint, people.puller, "plain", other).status_code == 200
    # No push is released twice: the one sent at push time was the only one.
    assert [n for n in sent(services) if n[0] == "push"] == [
        ("push", digest, "1"),
        ("push", other, "2"),
    ]


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ({"quarantineState": "Clean"}, "Passed or Failed"),
        ({"quarantineState": "Passed", "quarantineDetails": {"state": "x"}}, "string"),
        ({"quarantineState": "Passed", "quarantineDetails": "{not json"}, "not valid JSON"),
        ({"quarantineState": "Passed", "quarantineDetails": '{"verdict": 1}'}, "verdict"),
        (
            {
                "quarantineState": "Passed",
                "quarantineDetails": '{"result": {"version": "1", "summary": '
                '[{"severity": "Severe", "count": 1}]}}',
            },
            "severity",
        ),
        (
            {
                "quarantineState": "Passed",
                "quarantineDetails": orjson.dumps(
                    {"result": {"version": "1", "summary": [{"count": 1}] * 6}}
                ).decode(),
            },
            "summary",
        ),
        ({"quarantineDetails": DETAILS}, "quarantineState"),
        ({"quarantineState": "Passed", "writeEnabled": "no"}, "writeEnabled"),
    ],
)
def test_bad_writes_are_400_in_acr_s_shape(
    endpoint: AppEndpoint, people: People, body: object, fault: str
) -> None:
    digest = push(endpoint, people, "bad/bodies")
    answer = patch(endpoint, people.writer, "bad/bodies", digest, body)
    assert answer.status_code == 400, answer.text
    [error] = answer.json()["errors"]
    assert error["code"] == "INVALID_REQUEST" and fault in error["message"], error


def test_unknown_manifest_and_lock_changes_with_a_state(
    endpoint: AppEndpoint, people: People
) -> None:
    digest = push(endpoint, people, "mixed")
    missing = "sha256:" + "0" * 64
    gone = patch(endpoint, people.writer, "mixed", missing, {"quarantineState": "Passed"})
    assert gone.status_code == 404
    # A lock change with the state needs metadata_write too, which the writer lacks...
    both = {"quarantineState": "Failed", "writeEnabled": False}
    assert patch(endpoint, people.writer, "mixed", digest, both).status_code == 403
    # ...and the admin user has.
    done = patch(endpoint, people.admin, "mixed", digest, both)
    assert done.status_code == 200, done.text
    shown = done.json()["manifest"]["changeableAttributes"]
    assert (shown["quarantineState"], shown["writeEnabled"]) == ("Failed", False)


def test_a_bearer_token_for_pull_pulls_quarantined_images_as_its_identity_may(
    endpoint: AppEndpoint, people: People
) -> None:
    """ACR's walkthrough uses tokens: a pull token of a quarantine reader pulls a held
    image; a pull token of a plain puller does not; a writer's pull token sets the
    state. The role counts as it is now, not as it was when the token was made."""
    set_policy(endpoint.services, True)
    digest = push(endpoint, people, "tokens")

    def token(who: dict[str, str], scope: str) -> dict[str, str]:
        with endpoint.client() as http:
            answer = http.get(
                "/oauth2/token", params={"service": HOST, "scope": scope}, headers=who
            )
        assert answer.status_code == 200, answer.text
        return {"Authorization": "Bearer " + answer.json()["access_token"]}

    scope = "repository:tokens:pull"
    assert pull(endpoint, token(people.reader, scope), "tokens", digest).status_code == 200
    assert pull(endpoint, token(people.puller, scope), "tokens", digest).status_code == 403
    writer = token(people.writer, "repository:tokens:pull,push")
    assert patch(endpoint, writer, "tokens", digest, {"quarantineState": "Passed"}).is_success
    assert pull(endpoint, token(people.puller, scope), "tokens", "1").status_code == 200
