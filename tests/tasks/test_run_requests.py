"""Run requests read as Dockyard runs them, the run `$filter`, and the signed URLs."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dockyard.tasks.requests import (
    RunRequestInvalid,
    RunRequestUnsupported,
    aliases,
    parse_run_request,
    render,
    split_image,
)
from dockyard.tasks.runs import RunFilterInvalid, parse_filter
from dockyard.tasks.signed_urls import READ, WRITE, SignatureInvalid, Signed, UrlSigner
from dockyard.tasks.sources import BuildSources


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_encoded_and_file_task_requests() -> None:
    yaml = "version: v1.1.0\nsteps: \n  - cmd: busybox echo {{.Values.who}}\n"
    body = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": encoded(yaml),
        "values": [
            {"type": "SetValue", "name": "who", "value": "me", "isSecret": False},
            {"type": "SetValue", "name": "token", "value": "hidden", "isSecret": True},
        ],
    }
    plan = parse_run_request(body, lambda text: f"sealed({len(text)})")
    assert plan.task_text == yaml and plan.source is None and plan.run_type == "QuickRun"
    assert [(v.name, v.value, v.secret) for v in plan.values] == [
        ("who", "me", False),
        ("token", "sealed(6)", True),
    ]
    assert "hidden" not in str(plan.as_json())
    with pytest.raises(RunRequestInvalid):
        parse_run_request({**body, "encodedTaskContent": "not base64!"}, str)
    body = {"type": "FileTaskRunRequest", "sourceLocation": "source/1/x.tar.gz"}
    plan = parse_run_request(body, str)
    assert plan.task_file == "acb.yaml" and plan.values_file is None  # az's default name
    plan = parse_run_request({**body, "taskFilePath": "ci/acr-task.yaml", "timeout": 600}, str)
    assert plan.task_file == "ci/acr-task.yaml"
    assert type(plan).from_json(plan.as_json(), 600) == plan
    for bad in ({"taskFilePath": "../x.yaml"}, {"sourceLocation": None}):
        with pytest.raises(RunRequestInvalid):
            parse_run_request({**body, **bad}, str)
    with pytest.raises(RunRequestUnsupported):
        parse_run_request({"type": "TaskRunRequest"}, str)


def test_secret_arguments_are_sealed() -> None:
    body = {
        "type": "DockerBuildRequest",
        "sourceLocation": "source/1/x.tar.gz",
        "dockerFilePath": "sub/Dockerfile",
        "arguments": [
            {"name": "A", "value": "1", "isSecret": False},
            {"name": "S", "value": "hidden", "isSecret": True},
        ],
    }
    plan = parse_run_request(body, lambda text: f"sealed({len(text)})")
    assert [(a.name, a.value, a.secret) for a in plan.arguments] == [
        ("A", "1", False),
        ("S", "sealed(6)", True),
    ]
    assert "hidden" not in str(plan.as_json())
    assert plan.run_type == "QuickBuild" and plan.dockerfile == "sub/Dockerfile"


def test_image_names_and_run_variables() -> None:
    assert split_image("app") == (None, "app", "latest")
    assert split_image("team/app:v1") == (None, "team/app", "v1")
    assert split_image("localhost:5000/app:v1") == ("localhost:5000", "app", "v1")
    assert split_image("reg.example/app") == ("reg.example", "app", "latest")
    assert (
        render("app:{{.Run.ID}}-{{ .Run.RegistryName }}", {"ID": "ca7", "RegistryName": "r"})
        == "app:ca7-r"
    )
    with pytest.raises(RunRequestInvalid):
        render("{{.Run.Secret}}", {})
    assert render("{{.Values.a}}/{{ .Run.ID }}", {"ID": "ca1"}, {"a": "x"}) == "x/ca1"
    with pytest.raises(RunRequestInvalid, match="--set"):
        render("{{.Values.missing}}", {}, {})
    variables = {"ID": "ca7", "Registry": "r.example"}
    assert aliases("$Registry/app:$ID $IDENTITY", variables) == "r.example/app:ca7 $IDENTITY"


def test_run_filters() -> None:
    selected = parse_filter("TaskName eq 'nightly' and Status eq 'succeeded'")
    assert selected.task_name == "nightly" and selected.statuses == {"Succeeded"}
    assert parse_filter(None).statuses is None
    for bad in ("Status eq 'Sleeping'", "contains(OutputImageManifests, 'a')", "Foo eq 'x'"):
        with pytest.raises(RunFilterInvalid):
            parse_filter(bad)


def test_signed_urls_grant_one_thing_until_they_expire() -> None:
    signer = UrlSigner(b"secret")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    query = signer.query(Signed("r1-logs/ca1.log", READ, int(now.timestamp()) + 60))
    granted = dict(part.split("=", 1) for part in query.split("&"))
    signer.check("r1-logs/ca1.log", READ, granted, now)
    for path, permission, when in (
        ("r1-logs/ca2.log", READ, now),
        ("r1-logs/ca1.log", WRITE, now),
        ("r1-logs/ca1.log", READ, now.replace(year=2027)),
    ):
        with pytest.raises(SignatureInvalid):
            signer.check(path, permission, granted, when)
    with pytest.raises(SignatureInvalid):
        UrlSigner(b"another").check("r1-logs/ca1.log", READ, granted, now)


def test_old_unused_uploads_expire(tmp_path: Path) -> None:
    sources = BuildSources(tmp_path, 1024)

    async def body():
        yield b"data"

    old, new = sources.new_name(), sources.new_name()
    for name in (old, new):
        asyncio.run(sources.put(1, name, body()))
    os.utime(sources.path(1, old), (1, 1))
    assert sources.expire(1000) == 1
    assert not sources.path(1, old).exists() and sources.path(1, new).exists()
