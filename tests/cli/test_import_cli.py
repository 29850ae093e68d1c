"""`dockyard import`'s client side: the importImage body it sends for az acr import's
options, and the progress it draws from the operation's polls."""

from __future__ import annotations

import httpx
import pytest

from dockyard.cli.imports import _Bar, _registry_of, _targets


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("registry.example.com/team/app:1", ("registry.example.com", "team/app:1")),
        ("127.0.0.1:5001/bb@sha256:abc", ("127.0.0.1:5001", "bb@sha256:abc")),
        ("localhost/app", ("localhost", "app")),
        ("team/app:1", (None, "team/app:1")),
    ],
)
def test_the_source_registry_is_read_as_docker_reads_it(source, expected) -> None:
    assert _registry_of(source) == expected


def test_targets_default_to_the_source_s_repository_and_tag_or_untagged_by_digest() -> None:
    assert _targets("team/app:1", [], []) == {"targetTags": ["team/app:1"]}
    assert _targets("team/app@sha256:abc", [], []) == {"untaggedTargetRepositories": ["team/app"]}
    assert _targets("app:1", ["a:1", "b:2"], ["c"]) == {
        "targetTags": ["a:1", "b:2"],
        "untaggedTargetRepositories": ["c"],
    }


def test_the_bar_follows_the_bytes_the_operation_reports() -> None:
    bar = _Bar("app:1 → dockyard")
    running = {"status": "InProgress", "properties": {"bytesTotal": 1000, "bytesCopied": 250}}
    bar.watch(httpx.Response(202, json=running))
    (task,) = bar.display.tasks
    assert (task.total, task.completed) == (1000, 250)
    bar.watch(httpx.Response(202, content=b""))  # an answer with no body changes nothing
    assert (task.total, task.completed) == (1000, 250)
