"""Task files read as ACR reads them: steps and their properties, the `when` graph, the
run variables, values and aliases, and the refusals (400s) of what cannot run."""

from __future__ import annotations

import base64

import pytest

from dockyard.tasks.task_files import (
    BUILD,
    CMD,
    PUSH,
    TaskFileInvalid,
    TaskFileUnsupported,
    check_task_file,
    parse_task_file,
)

VARIABLES = {"ID": "ca3", "Registry": "reg.example", "RegistryName": "reg", "TaskName": ""}

TASK = """
version: v1.1.0
stepTimeout: 300
env: [SHARED=task, MODE=task]
steps:
  - id: lint
    cmd: $Registry/tools/lint:1 --strict {{.Values.level}}
    when: ["-"]
    env: [MODE=lint]
  - id: test
    cmd: busybox sh -c "echo {{.Run.ID}}"
    when: ["-"]
    retries: 2
    retryDelay: 1
    ignoreErrors: true
    entryPoint: /bin/sh
    workingDirectory: /workspace/sub
  - id: build
    build: -t {{.Run.Registry}}/app:{{.Run.ID}} -f docker/Dockerfile --build-arg A=1 --no-cache .
    when: [lint, test]
    timeout: 900
  - push: ["$Registry/app:$ID", ["app:latest"]]
"""


def test_steps_and_their_properties() -> None:
    task = parse_task_file(TASK, VARIABLES, {"level": "high"})
    lint, test, build, push = task.steps
    assert (lint.kind, test.kind, build.kind, push.kind) == (CMD, CMD, BUILD, PUSH)
    assert lint.command == ("reg.example/tools/lint:1", "--strict", "high")
    assert lint.env == ("SHARED=task", "MODE=lint") and lint.timeout == 300
    assert lint.working_directory == "/workspace"
    assert test.command == ("busybox", "sh", "-c", "echo ca3") and test.entry_point == "/bin/sh"
    assert (test.retries, test.retry_delay, test.ignore_errors) == (2, 1, True)
    assert test.working_directory == "/workspace/sub"
    assert build.build is not None and build.timeout == 900
    assert build.build.tags == ("reg.example/app:ca3",)
    assert build.build.dockerfile == "docker/Dockerfile" and build.build.context == "."
    assert build.build.arguments == ("A=1",) and build.build.no_cache
    assert push.id == "acb_step_3" and push.images == ("reg.example/app:ca3", "app:latest")


def test_the_when_graph() -> None:
    task = parse_task_file(TASK, VARIABLES, {"level": "x"})
    lint, test, build, push = task.steps
    assert lint.after == () and test.after == ()  # ["-"]: at once, beside each other
    assert build.after == ("lint", "test")
    assert push.after == ("build",)  # no when: after the step before it
    assert [s.id for s in task.ready(set())] == ["lint", "test"]
    assert [s.id for s in task.ready({"lint"})] == ["test"]
    assert [s.id for s in task.ready({"lint", "test"})] == ["build"]
    looping = "steps:\n  - {id: a, cmd: x, when: [b]}\n  - {id: b, cmd: y, when: [a]}\n"
    with pytest.raises(TaskFileInvalid, match="wait on each other"):
        parse_task_file(looping, VARIABLES, {})
    for when in ("[nothere]", "[a]", '["-", b]'):
        text = f"steps:\n  - {{id: b, cmd: y}}\n  - {{id: a, cmd: x, when: {when}}}\n"
        with pytest.raises(TaskFileInvalid):
            parse_task_file(text, VARIABLES, {})


def test_aliases_are_v1_1_0s() -> None:
    text = "version: v1.0.0\nsteps:\n  - cmd: $Registry/app echo $ID\n"
    [step] = parse_task_file(text, VARIABLES, {}).steps
    assert step.command == ("$Registry/app", "echo", "$ID")
    [step] = parse_task_file(text.replace("v1.0.0", "v1.1.0"), VARIABLES, {}).steps
    assert step.command == ("reg.example/app", "echo", "ca3")


def test_the_cmd_az_acr_run_writes() -> None:
    text = (
        "version: v1.1.0\nsteps: \n  - cmd: $Registry/base/busybox:1 echo hi\n"
        "    disableWorkingDirectoryOverride: true\n    timeout: 300\n"
    )
    [step] = parse_task_file(text, VARIABLES, {}).steps
    assert step.id == "acb_step_0" and step.working_directory is None  # the image's own
    assert step.timeout == 300


def test_volumes_are_mounted_by_name() -> None:
    content = base64.b64encode(b"secret file").decode()
    text = (
        f"volumes:\n  - name: creds\n    secret:\n      token.txt: {content}\n"
        "steps:\n  - cmd: busybox cat /run/creds/token.txt\n"
        "    volumeMounts:\n      - name: creds\n        mountPath: /run/creds\n"
    )
    task = parse_task_file(text, VARIABLES, {})
    assert task.volumes == {"creds": {"token.txt": b"secret file"}}
    assert task.steps[0].mounts == (("creds", "/run/creds"),)
    with pytest.raises(TaskFileInvalid, match="not one of the task's volumes"):
        other = text.replace("- name: creds\n        m", "- name: x\n        m")
        parse_task_file(other, VARIABLES, {})


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("steps: [", TaskFileInvalid, "not valid YAML"),
        ("- just a list", TaskFileInvalid, "mapping"),
        ("steps: []", TaskFileInvalid, "list of steps"),
        ("version: v9\nsteps:\n  - cmd: x\n", TaskFileInvalid, "version"),
        ("stepz:\n  - cmd: x\n", TaskFileInvalid, "unknown key 'stepz'"),
        ("steps:\n  - cmd: x\n    colour: red\n", TaskFileInvalid, "unknown key 'colour'"),
        ("steps:\n  - cmd: x\n    build: .\n", TaskFileInvalid, "exactly one"),
        ("steps:\n  - push: [a]\n    entryPoint: sh\n", TaskFileInvalid, "entryPoint"),
        ("steps:\n  - cmd: x\n    privileged: true\n", TaskFileUnsupported, "privileged"),
        ("steps:\n  - cmd: x\n    network: host\n", TaskFileUnsupported, "network"),
        ("networks: [{name: n}]\nsteps:\n  - cmd: x\n", TaskFileUnsupported, "networks"),
        (
            "secrets:\n  - id: s\n    keyvault: https://v.vault.azure.net/secrets/s\n"
            "steps:\n  - cmd: x\n",
            TaskFileUnsupported,
            "Key Vault",
        ),
        ("steps:\n  - cmd: x\n    timeout: soon\n", TaskFileInvalid, "timeout"),
        ("steps:\n  - cmd: x\n    env: [NOEQUALS]\n", TaskFileInvalid, "NAME=VALUE"),
        ("steps:\n  - build: -t a --squash .\n", TaskFileUnsupported, "--squash"),
        ("steps:\n  - build: -t a ../up\n", TaskFileInvalid, "inside the context"),
        ("steps:\n  - build: -t a https://github.com/a/b.git\n", TaskFileUnsupported, "URL"),
        ("steps:\n  - {id: a, cmd: x}\n  - {id: a, cmd: y}\n", TaskFileInvalid, "twice"),
        ("steps:\n  - cmd: x {{.Values.nothere}}\n", TaskFileInvalid, "--set"),
        ("x: &a [1]\ny: [*a, *a]\nsteps:\n  - cmd: x\n", TaskFileUnsupported, "aliases"),
    ],
)
def test_what_is_refused(text: str, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        parse_task_file(text, VARIABLES, {})


def test_a_privileged_false_or_empty_network_is_fine() -> None:
    text = "networks: []\nsteps:\n  - cmd: x\n    privileged: false\n    network: ''\n"
    assert parse_task_file(text, VARIABLES, {}).steps[0].command == ("x",)


def test_checked_before_the_values_are_known() -> None:
    text = "steps:\n  - cmd: busybox echo {{.Values.later}} {{.Run.Commit}}\n"
    check_task_file(text, {}, more_values=True)
    with pytest.raises(TaskFileInvalid):
        check_task_file(text, {}, more_values=False)
