"""Tasks' timer triggers with a fake clock: each occurrence of each enabled timer
queues one run of its task (with `timerTrigger`), once however many workers look, a
missed stretch once; a disabled task or timer queues nothing; a schedule that is no
cron expression is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fake_clock import FakeClock
from test_api_runs import REGISTRY, VERSION, session
from test_api_tasks import command_task

from dockyard.metadata.records import RegistryRecord
from dockyard.services import Services
from dockyard.tasks.timers import TaskTimers

START = datetime(2026, 12, 6, 20, 58, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def services(make_services, clock: FakeClock) -> Services:
    return make_services(
        clock=clock,
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )


def registry_of(services: Services) -> RegistryRecord:
    [registry] = services.registries.all()
    return registry


def put_task(services: Services, name: str, timers: list[dict[str, str]], **extra: str) -> None:
    properties = command_task()["properties"]
    properties["trigger"] = {"timerTriggers": timers}
    properties.update(extra)
    services.tasks.put(registry_of(services), name, "westus", {}, properties)


def fired(services: Services) -> list[tuple[str | None, str, str]]:
    return [
        (run.task_name, run.trigger["timerTrigger"]["timerTriggerName"],
         run.trigger["timerTrigger"]["scheduleOccurrence"])
        for run in services.task_timers.run_due()
    ]  # fmt: skip


def test_each_occurrence_of_each_timer_queues_one_run(services: Services, clock: FakeClock) -> None:
    put_task(
        services,
        "nightly",
        [
            {"name": "every5", "schedule": "*/5 * * * *", "status": "Enabled"},
            {"name": "at21", "schedule": "0 21 * * *", "status": "Enabled"},
            {"name": "off", "schedule": "* * * * *", "status": "Disabled"},
        ],
    )
    assert fired(services) == []
    clock.advance(timedelta(minutes=2))  # 21:00
    assert sorted(fired(services)) == [
        ("nightly", "at21", "2026-12-06T21:00:00Z"),
        ("nightly", "every5", "2026-12-06T21:00:00Z"),
    ]
    assert fired(services) == []  # each occurrence once
    clock.advance(timedelta(minutes=5))
    assert fired(services) == [("nightly", "every5", "2026-12-06T21:05:00Z")]
    clock.advance(timedelta(hours=1))  # no worker ran for an hour: one late run
    assert fired(services) == [("nightly", "every5", "2026-12-06T21:10:00Z")]
    clock.advance(timedelta(minutes=5))
    assert fired(services) == [("nightly", "every5", "2026-12-06T22:10:00Z")]

    async def steps(http: httpx.AsyncClient) -> httpx.Response:
        return await http.get(f"{REGISTRY}/runs/ca1", params=VERSION)

    shown = session(services, steps).json()["properties"]
    assert shown["task"] == "nightly" and shown["runType"] == "AutoRun"
    assert shown["timerTrigger"]["scheduleOccurrence"] == "2026-12-06T21:00:00Z"


def test_two_workers_queue_an_occurrence_once(services: Services, clock: FakeClock) -> None:
    put_task(services, "every1", [{"name": "t", "schedule": "* * * * *", "status": "Enabled"}])
    other = TaskTimers(services.meta, services.runs, clock)
    clock.advance(timedelta(minutes=1))
    assert len(services.task_timers.run_due()) + len(other.run_due()) == 1


def test_a_disabled_task_queues_nothing_and_moves_on(services: Services, clock: FakeClock) -> None:
    timers = [{"name": "t", "schedule": "* * * * *", "status": "Enabled"}]
    put_task(services, "sleepy", timers, status="Disabled")
    clock.advance(timedelta(minutes=1))
    assert fired(services) == []
    registry = registry_of(services)
    services.tasks.update(registry, "sleepy", None, {"status": "Enabled"})
    assert fired(services) == []  # the timers start again from the update
    clock.advance(timedelta(minutes=1))
    assert [name for name, _, _ in fired(services)] == ["sleepy"]
    services.tasks.delete(registry, "sleepy")
    clock.advance(timedelta(minutes=1))
    assert fired(services) == []


@pytest.mark.parametrize("schedule", ["61 * * * *", "* * * *", "every day"])
def test_a_schedule_that_is_no_cron_expression_is_refused(
    services: Services, schedule: str
) -> None:
    body = command_task()
    body["properties"]["trigger"] = {"timerTriggers": [{"name": "t", "schedule": schedule}]}

    async def steps(http: httpx.AsyncClient) -> httpx.Response:
        return await http.put(f"{REGISTRY}/tasks/badtimer", params=VERSION, json=body)

    refused = session(services, steps)
    assert refused.status_code == 400 and "cron" in refused.json()["error"]["message"]
