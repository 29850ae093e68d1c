"""What a task's build is recorded to start from: the final stage's base as RunTime
(followed through the stages it names), the others as BuildTime, no scratch, digests or
names made of build arguments."""

from __future__ import annotations

import pytest

from dockyard.tasks.base_image_triggers import stage_bases


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
