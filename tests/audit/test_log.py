"""`audit/log.py` on a real database: outbox events become repository events once
(redeliveries skipped), the request path's rows are buffered and written in a batch,
queries filter as the CLI asks, and retention prunes by age with a clock the test moves."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from dockyard.audit.log import AuditLog
from dockyard.auth.login_guard import LoginGuard
from dockyard.core.events import Envelope, from_row
from dockyard.core.registries import Registries
from dockyard.metadata.audit import AuditFilter, RepositoryEventRecord
from dockyard.metadata.outbox import EventRecord
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.settings import AuthSettings

if TYPE_CHECKING:
    from fake_clock import FakeClock

DIGEST = "sha256:" + "a" * 64


def _audit(meta: Metadata, clock: FakeClock, capacity: int = 100) -> AuditLog:
    return AuditLog(meta, Registries(meta, "contoso"), clock, 90, capacity)


def _push(event_id: int, clock: FakeClock, registry: RegistryRecord) -> Envelope:
    payload = {
        "repository": "hello",
        "digest": DIGEST,
        "tag": "v1",
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "size": 123,
        "request": {"id": "req-1", "host": "contoso.example", "method": "PUT", "useragent": "ua"},
        "caller": {"identity": "ci-token", "ip": "10.0.0.7"},
    }
    return from_row(EventRecord(event_id, registry.id, "push", "hello", payload, clock()))


def test_outbox_events_become_rows_once(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    audit = _audit(meta, clock)
    push = _push(1, clock, registry)
    audit.record_event(push)
    audit.record_event(push)  # redelivered
    untag = from_row(
        EventRecord(2, registry.id, "untag", "hello", {"digest": DIGEST, "tag": "v1"}, clock())
    )
    lock = from_row(EventRecord(3, registry.id, "lock", "hello", {}, clock()))
    audit.record_events([push, untag, lock])  # a batch redelivered with what it missed
    rows = audit.query(registry, "repository", AuditFilter())
    assert [r["OperationName"] for r in rows] == ["Untag", "Push"]
    pushed = rows[1]
    assert pushed["Identity"] == "ci-token"
    assert pushed["CallerIpAddress"] == "10.0.0.7"
    assert pushed["CorrelationId"] == "req-1"
    assert pushed["LoginServer"] == "contoso.example"
    assert (pushed["Repository"], pushed["Tag"], pushed["Digest"]) == ("hello", "v1", DIGEST)
    assert (pushed["ResultType"], pushed["Size"]) == ("201", 123)
    # An untag made outside a request (the worker, the CLI): no caller, the registry's host.
    assert rows[0]["Identity"] is None
    assert rows[0]["LoginServer"] == registry.login_server


def test_buffered_rows_are_written_in_a_batch_and_dropped_past_capacity(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    audit = _audit(meta, clock, capacity=2)

    def pull(status: str) -> RepositoryEventRecord:
        return RepositoryEventRecord(
            clock(), "Pull", "hello", status, login_server="contoso.registry.example"
        )

    assert audit.buffer(pull("200")) and audit.buffer(pull("404"))
    assert not audit.buffer(pull("200"))
    assert audit.query(registry, "repository", AuditFilter()) == []
    assert audit.flush() == 2
    assert audit.flush() == 0
    results = [r["ResultType"] for r in audit.query(registry, "repository", AuditFilter())]
    assert sorted(results) == ["200", "404"]


def test_queries_filter_by_time_identity_repository_operation_and_result(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    audit = _audit(meta, clock)
    start = clock()
    for name, repo, operation, status in [
        ("alice", "hello", "Pull", "200"),
        ("bob", "hello", "Push", "201"),
        ("alice", "other", "Pull", "404"),
    ]:
        clock.advance(timedelta(minutes=1))
        audit.buffer(
            RepositoryEventRecord(
                clock(), operation, repo, status, identity=name, login_server=registry.login_server
            )
        )
    audit.flush()

    def ops(**wanted: object) -> list[tuple[str, str]]:
        found = audit.query(registry, "repository", AuditFilter(**wanted))  # type: ignore[arg-type]
        return [(r["Identity"], r["Repository"]) for r in found]

    assert ops(identity="alice") == [("alice", "other"), ("alice", "hello")]
    assert ops(repository="hello") == [("bob", "hello"), ("alice", "hello")]
    assert ops(operation="push") == [("bob", "hello")]
    assert ops(result="failure") == [("alice", "other")]
    assert ops(result="success", identity="alice") == [("alice", "hello")]
    assert ops(result="201") == [("bob", "hello")]
    minute = timedelta(minutes=1)
    assert ops(since=start + 2 * minute) == [("alice", "other"), ("bob", "hello")]
    assert ops(until=start + 2 * minute) == [("alice", "hello")]


def test_retention_prunes_repository_and_login_events_past_the_days(
    meta: Metadata, clock: FakeClock, registry: RegistryRecord
) -> None:
    audit = _audit(meta, clock)
    guard = LoginGuard(meta, AuthSettings(), clock)
    guard.failed(registry.id, "mallory", "10.0.0.9", "password", "wrong password")
    audit.record_event(_push(1, clock, registry))
    clock.advance(timedelta(days=60))
    guard.succeeded(registry.id, "alice", "10.0.0.8", "password")
    audit.record_event(_push(2, clock, registry))

    clock.advance(timedelta(days=30, seconds=1))  # the first two are now past 90 days
    assert audit.prune() == 2
    assert [r["Identity"] for r in audit.query(registry, "login", AuditFilter())] == ["alice"]
    assert len(audit.query(registry, "repository", AuditFilter())) == 1
    logins = audit.query(registry, "login", AuditFilter(result="success", operation="login"))
    assert logins[0]["OperationName"] == "Login" and logins[0]["Method"] == "password"
    assert audit.prune() == 0
