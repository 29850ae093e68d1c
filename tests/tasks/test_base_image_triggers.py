"""What a task's build is recorded to start from: the final stage's base as RunTime
(followed through the stages it names), the others as BuildTime, no scratch, digests or
names made of build arguments; what a tag's move then starts, in process (pushes
through core, nothing executes the runs): one run per change, claimed once, none for the
same digest, a disabled task or trigger, a BuildTime image unless the trigger's type is
All, or a push by a run of the task itself. A real push and a polled registry are
tests/integration/test_task_triggers.py's."""

from __future__ import annotations

import pytest
from core_registry import Registry

from dockyard.services import Services
from dockyard.tasks.base_image_triggers import BaseImageTracker, stage_bases


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        ("FROM busybox\n", [("RunTime", "busybox")]),
        (
            "FROM golang:1 AS build\nRUN make\nFROM alpine:3\nCOPY --from=build /a /a\n",
            [("BuildTime", "golang:1"), ("RunTime", "alpine:3")],
        ),
        (
            "FROM --platform=$BUILDPLATFORM node:20 AS base\nFROM base AS test\nFROM base\n",
            [("RunTime", "node:20")],
        ),
        (
            "# comment\nFROM \\\n  example.com/a/b:1 AS x\nFROM scratch\n",
            [("BuildTime", "example.com/a/b:1")],
        ),
        ("ARG V=1\nFROM busybox:${V}\n", []),
        ("FROM busybox@sha256:" + "a" * 64 + "\n", []),
    ],
)
def test_the_bases_of_each_stage(dockerfile: str, expected: list[tuple[str, str]]) -> None:
    assert stage_bases(dockerfile) == expected


@pytest.fixture(params=["sqlite", "postgresql"])
def services(request: pytest.FixtureRequest, make_services) -> Services:
    """The claims are conditional updates: both databases."""
    more = {}
    if request.param == "postgresql":
        postgres = request.getfixturevalue("postgres")
        more["metadata"] = {"url": postgres.create_database("basetriggers", migrated=True)}
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        **more,
    )


def make_task(services: Services, registry, status: str = "Enabled", trigger: str = "Enabled"):
    services.tasks.put(
        registry,
        "app-task",
        "westus",
        {},
        {
            "status": status,
            "step": {
                "type": "Docker",
                "imageNames": ["app:{{.Run.ID}}"],
                "dockerFilePath": "Dockerfile",
                "contextPath": "https://github.com/owner/app.git#main",
            },
            "trigger": {"baseImageTrigger": {"name": "base", "status": trigger}},
        },
    )


def test_a_moved_tag_queues_one_run_and_the_same_digest_none(services: Services) -> None:
    registry = services.registries.for_host("localhost:5000")
    pushes = Registry(services.meta, services.stores, services.clock, registry)
    first = pushes.image("base/img", "1", b'{"rev": 1}', b"layer")
    make_task(services, registry)
    tracker = BaseImageTracker(services.meta, services.registries)
    tracker.record(registry, "app-task", "FROM golang AS b\nFROM localhost:5000/base/img:1\n")
    shown = services.tasks.get(registry, "app-task").properties["step"]["baseImageDependencies"]
    assert shown == [
        {
            "type": "BuildTime",
            "registry": "docker.io",
            "repository": "library/golang",
            "tag": "latest",
            "digest": None,
        },
        {
            "type": "RunTime",
            "registry": "localhost:5000",
            "repository": "base/img",
            "tag": "1",
            "digest": first,
        },
    ]
    triggers = services.base_image_triggers
    assert triggers.tag_moved(registry.id, "base/img", "1", first) == []
    second = pushes.image("base/img", "1", b'{"rev": 2}', b"layer")
    [run] = triggers.tag_moved(registry.id, "base/img", "1", second)
    assert run.task_name == "app-task" and run.run_type == "AutoBuild"
    assert run.trigger["imageUpdateTrigger"]["images"] == [
        {"registry": "localhost:5000", "repository": "base/img", "tag": "1", "digest": second}
    ]
    # Another worker handed the same event claims nothing.
    assert triggers.tag_moved(registry.id, "base/img", "1", second) == []
    # A push by a run of the task itself moves the digest on, and starts nothing.
    third = pushes.image("base/img", "1", b'{"rev": 3}', b"layer")
    assert (
        triggers.tag_moved(registry.id, "base/img", "1", third, f"run:dockyard/{run.run_id}") == []
    )
    assert triggers.tag_moved(registry.id, "base/img", "1", third) == []


@pytest.mark.parametrize(("status", "trigger"), [("Disabled", "Enabled"), ("Enabled", "Disabled")])
def test_a_disabled_task_or_trigger_starts_nothing(
    services: Services, status: str, trigger: str
) -> None:
    registry = services.registries.for_host("localhost:5000")
    pushes = Registry(services.meta, services.stores, services.clock, registry)
    pushes.image("base/img", "1", b'{"rev": 1}', b"layer")
    make_task(services, registry, status, trigger)
    BaseImageTracker(services.meta, services.registries).record(
        registry, "app-task", "FROM localhost:5000/base/img:1\n"
    )
    second = pushes.image("base/img", "1", b'{"rev": 2}', b"layer")
    assert services.base_image_triggers.tag_moved(registry.id, "base/img", "1", second) == []


def test_a_task_file_records_the_bases_of_all_its_builds(services: Services) -> None:
    registry = services.registries.for_host("localhost:5000")
    make_task(services, registry)
    BaseImageTracker(services.meta, services.registries).record(
        registry,
        "app-task",
        "FROM golang:1 AS b\nFROM alpine:3\n",
        "FROM alpine:3 AS base\nFROM golang:1\n",
    )
    shown = services.tasks.get(registry, "app-task").properties["step"]["baseImageDependencies"]
    assert sorted((d["repository"], d["type"]) for d in shown) == [
        ("library/alpine", "RunTime"),
        ("library/golang", "RunTime"),
    ]


def test_a_build_time_image_triggers_only_with_all(services: Services) -> None:
    registry = services.registries.for_host("localhost:5000")
    pushes = Registry(services.meta, services.stores, services.clock, registry)
    pushes.image("base/build", "1", b'{"rev": 1}', b"layer")
    make_task(services, registry)
    tracker = BaseImageTracker(services.meta, services.registries)
    dockerfile = "FROM localhost:5000/base/build:1 AS b\nFROM scratch\n"
    tracker.record(registry, "app-task", dockerfile)
    second = pushes.image("base/build", "1", b'{"rev": 2}', b"layer")
    assert services.base_image_triggers.tag_moved(registry.id, "base/build", "1", second) == []
    services.tasks.update(
        registry,
        "app-task",
        None,
        {"trigger": {"baseImageTrigger": {"baseImageTriggerType": "All"}}},
    )
    third = pushes.image("base/build", "1", b'{"rev": 3}', b"layer")
    assert len(services.base_image_triggers.tag_moved(registry.id, "base/build", "1", third)) == 1
