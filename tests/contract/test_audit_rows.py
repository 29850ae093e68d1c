"""The audit log's batch insert (`AuditStore.add`, the driver's own executemany) on each
database: every column comes back as written, the time as an aware UTC timestamp, and a
redelivered outbox event's row is skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, insert, select

from dockyard.metadata.audit import AuditFilter, AuditStore, RepositoryEventRecord
from dockyard.metadata.schema import repository_events as _r
from dockyard.metadata.store import Metadata

if TYPE_CHECKING:
    from fake_clock import FakeClock


def _row(clock: FakeClock, **changes: Any) -> RepositoryEventRecord:
    row = RepositoryEventRecord(
        time=clock(),
        operation="Pull",
        repository="hello/world",
        result_type="200",
        result_description="OK",
        tag="v1",
        digest="sha256:" + "b" * 64,
        identity="ci",
        caller_ip="10.0.0.7",
        user_agent="skopeo/1.13",
        login_server="contoso.example",
        correlation_id="f1c0ffee-0000-4000-8000-000000000001",
        size=1234,
        media_type="application/vnd.oci.image.manifest.v1+json",
        artifact_type=None,
        duration_ms=3,
    )
    return row._replace(**changes)


def test_rows_round_trip_and_redeliveries_are_skipped(meta: Metadata, clock: FakeClock) -> None:
    with meta.transaction() as tx:
        registry = tx.create_registry("contoso", "contoso.example")
    store = AuditStore(meta)
    pulled = _row(clock)
    pushed = _row(clock, operation="Push", result_type="201", event_id=7, size=None)
    store.add([(registry.id, pulled), (registry.id, pushed)])
    store.add([(registry.id, _row(clock, operation="Push", event_id=7))])  # redelivered

    found = store.repository_events(registry.id, AuditFilter(), 10)
    assert sorted(found, key=lambda r: r.operation) == [pulled, pushed]
    assert found[0].time == clock() and found[0].time.tzinfo is not None

    # Stored exactly as SQLAlchemy stores a time (SQLite keeps text: its format matters
    # to every comparison in a query).
    with meta.transaction() as tx:
        tx.conn.execute(insert(_r).values(registry_id=registry.id, **_row(clock)._asdict()))
    with meta.connection() as conn:
        stored = {text for (text,) in conn.execute(select(cast(_r.c.time, Text)))}
    assert len(stored) == 1, stored
