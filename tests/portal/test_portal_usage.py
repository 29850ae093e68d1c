"""The usage charts' reads and drawing: the days of pushes, pulls and stored bytes
aggregated in SQL on SQLite and PostgreSQL alike (UTC days, whatever the session's time
zone), the hourly record of each day's storage (upserted, old days dropped), the 30 days
filled in with recorded days and estimates walked back from them, and the page: two
inline SVG charts and the table with the same numbers, for the management API's `read`."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import update
from test_portal_operations import endpoint, owner  # noqa: F401 (fixtures)
from test_portal_pages import ADMIN_PASSWORD, sign_in

from dockyard.metadata import migrate, schema
from dockyard.metadata.audit import AuditStore, RepositoryEventRecord
from dockyard.metadata.portal import DayCounts, PortalQueries
from dockyard.metadata.store import Metadata
from dockyard.metadata.usage import storage_days
from dockyard.portal import charts
from dockyard.tiers.history import record_storage_day

NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def _event(time: datetime, operation: str, result: str = "200") -> RepositoryEventRecord:
    return RepositoryEventRecord(
        time=time, operation=operation, repository="app", result_type=result
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_days_are_aggregated_in_sql(backend: str, request, tmp_path) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = request.getfixturevalue("postgres").create_database("usage")
    meta = Metadata(url, clock)
    try:
        migrate.upgrade(meta.engine)
        with meta.transaction() as tx:
            registry = tx.create_registry("usagetest", "localhost:1")
            tx.conn.execute(
                schema.blobs.insert(),
                [
                    {
                        "registry_id": registry.id,
                        "digest": f"sha256:{n}",
                        "size": size,
                        "created_at": at,
                    }
                    for n, (size, at) in enumerate(
                        [
                            (100, NOW - timedelta(days=40)),
                            (20, NOW - timedelta(days=2)),
                            (3, NOW.replace(hour=23, minute=59) - timedelta(days=2)),
                            (5, NOW),
                        ]
                    )
                ],
            )
        late = NOW.replace(hour=23, minute=30) - timedelta(days=1)
        AuditStore(meta).add(
            [
                (registry.id, _event(late, "Push")),
                (registry.id, _event(late, "Pull")),
                (registry.id, _event(late, "Pull")),
                (registry.id, _event(late, "Pull", "404")),  # refused: not counted
                (registry.id, _event(late, "Untag")),
                (registry.id, _event(NOW - timedelta(days=45), "Pull")),  # too old
                (registry.id, _event(NOW, "Pull")),
            ]
        )
        queries = PortalQueries(meta)
        start = charts.since(NOW)
        assert queries.daily_operations(registry.id, start) == [
            DayCounts(date(2026, 12, 6), 1, 2),
            DayCounts(date(2026, 12, 7), 0, 1),
        ]
        arrivals = queries.daily_arrivals(registry.id, start)
        assert arrivals == {date(2026, 12, 5): 23, date(2026, 12, 7): 5}
        counts = queries.daily_operations(registry.id, start)
        for days_ago, used in ((500, 7), (3, 110), (3, 111)):
            with meta.transaction() as tx:
                tx.conn.execute(
                    update(schema.registries)
                    .where(schema.registries.c.id == registry.id)
                    .values(storage_used_bytes=used)
                )
            record_storage_day(meta, NOW - timedelta(days=days_ago))
        recorded = storage_days(meta, registry.id, date(2000, 1, 1))
        assert recorded == {date(2026, 12, 4): 111}  # the day's last; 500 days ago gone
    finally:
        meta.engine.dispose()
    rows = charts.usage_days(NOW, counts, arrivals, 128, {})
    assert len(rows) == charts.DAYS and rows[-1].day == date(2026, 12, 7)
    assert [row.stored for row in rows[-4:]] == [100, 123, 123, 128]
    assert rows[-2].pulls == 2 and rows[-2].pushes == 1
    rows = charts.usage_days(NOW, counts, arrivals, 128, recorded)
    assert [(row.stored, row.measured) for row in rows[-5:]] == [
        (111, False),
        (111, True),
        (123, False),
        (123, False),
        (128, True),
    ]


def test_the_usage_page_draws_and_tabulates(endpoint, owner) -> None:  # noqa: F811
    # The fixture's pulls are logged from the request path; its pushes only once the
    # outbox's audit consumer runs, which no worker does here: one is logged as it would.
    endpoint.services.audit.buffer(_event(datetime.now(UTC), "Push", "201"))
    endpoint.services.audit.flush()
    with endpoint.client() as http:
        sign_in(http, *owner)
        assert "/portal/r/dockyard/usage" in http.get("/portal/").text
        page = http.get("/portal/r/dockyard/usage")
        assert page.status_code == 200
        assert page.text.count('<svg class="chart"') == 2
        assert 'aria-hidden="true"' in page.text and "<polyline" in page.text
        today = datetime.now(UTC).date().isoformat()
        row = page.text.split(f'<time datetime="{today}">')[1].split("</tr>")[0]
        assert "<td>1</td><td>2</td>" in row
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        assert http.get("/portal/r/dockyard/usage").status_code == 403
