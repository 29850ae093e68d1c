"""What a run is asked to do: ACR's run requests (`scheduleRun`'s body) checked and
reduced to a `RunPlan`, and the run variables an image name may use. So far a Docker
build (`DockerBuildRequest`, what `az acr build` sends) and a one-step `cmd` run
(`EncodedTaskRunRequest` with the YAML `az acr run --cmd` writes). Pure: no I/O."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.common.names import check_repository_name, check_tag

DOCKER_BUILD, ENCODED_TASK = "DockerBuildRequest", "EncodedTaskRunRequest"
QUICK_BUILD, QUICK_RUN = "QuickBuild", "QuickRun"
MIN_TIMEOUT, MAX_TIMEOUT = 300, 28_800
_ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_RUN_VARIABLE = re.compile(r"\{\{\s*\.Run\.(\w+)\s*\}\}")


class RunRequestInvalid(RequestInvalid):
    code = "InvalidParameter"


class RunRequestUnsupported(RequestInvalid):
    """A request ACR accepts that Dockyard does not run yet (named in docs/tasks.md)."""

    code = "NotSupported"


@dataclass(frozen=True)
class Argument:
    name: str
    value: str  # sealed (`SecretBox`) when `secret`
    secret: bool


@dataclass(frozen=True)
class RunPlan:
    """A run request as Dockyard keeps it (`task_runs.request`)."""

    kind: str  # DOCKER_BUILD or ENCODED_TASK
    source: str | None  # the uploaded context's relative path; None: no context
    timeout_seconds: int | None
    platform: dict[str, str]
    image_names: tuple[str, ...] = ()
    push: bool = False
    no_cache: bool = False
    dockerfile: str = "Dockerfile"
    target: str | None = None
    arguments: tuple[Argument, ...] = ()
    command: str | None = None  # ENCODED_TASK: the one `cmd` step

    @property
    def run_type(self) -> str:
        return QUICK_BUILD if self.kind == DOCKER_BUILD else QUICK_RUN

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "platform": self.platform,
            "imageNames": list(self.image_names),
            "push": self.push,
            "noCache": self.no_cache,
            "dockerfile": self.dockerfile,
            "target": self.target,
            "arguments": [
                {"name": a.name, "value": a.value, "secret": a.secret} for a in self.arguments
            ],
            "command": self.command,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], timeout_seconds: int) -> RunPlan:
        return cls(
            kind=data["kind"],
            source=data["source"],
            timeout_seconds=timeout_seconds,
            platform=data["platform"],
            image_names=tuple(data["imageNames"]),
            push=data["push"],
            no_cache=data["noCache"],
            dockerfile=data["dockerfile"],
            target=data["target"],
            arguments=tuple(
                Argument(a["name"], a["value"], a["secret"]) for a in data["arguments"]
            ),
            command=data["command"],
        )


def _text(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise RunRequestInvalid(f"{key} is required")
        return None
    if not isinstance(value, str):
        raise RunRequestInvalid(f"{key} must be a string")
    return value


def _platform(body: dict[str, Any]) -> dict[str, str]:
    platform = body.get("platform") or {}
    if not isinstance(platform, dict):
        raise RunRequestInvalid("platform must be an object")
    os_name = str(platform.get("os") or "linux").lower()
    architecture = str(platform.get("architecture") or "amd64").lower()
    if os_name != "linux" or architecture not in ("amd64", "x86_64"):
        raise RunRequestUnsupported(
            f"platform {os_name}/{architecture}: Dockyard builds for linux/amd64 only so far"
        )
    return {"os": "linux", "architecture": "amd64"}


def _timeout(body: dict[str, Any]) -> int | None:
    value = body.get("timeout")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise RunRequestInvalid("timeout must be a whole number of seconds")
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise RunRequestInvalid(f"timeout must be {MIN_TIMEOUT} to {MAX_TIMEOUT} seconds")
    return value


def split_image(name: str) -> tuple[str | None, str, str]:
    """`[HOST/]REPOSITORY[:TAG]` as (host or None, repository, tag: `latest` if none);
    the first part is a host when it has a dot or a port, or is `localhost`."""
    first, _, rest = name.partition("/")
    host = None
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, name = first, rest
    repository, colon, tag = name.rpartition(":")
    if not colon:
        repository, tag = name, "latest"
    return host, repository, tag


def _image_name(name: Any) -> str:
    """`[HOST/]REPOSITORY[:TAG]`, possibly with run variables, checked as if filled."""
    if not isinstance(name, str) or not name:
        raise RunRequestInvalid("imageNames must be non-empty strings")
    sample = render(name, {key: "x1" for key in RUN_VARIABLES})
    _, repository, tag = split_image(sample)
    try:
        check_repository_name(repository)
        check_tag(tag)
    except RegistryError as exc:
        raise RunRequestInvalid(f"image name {name!r}: {exc.message}") from None
    return name


# The run variables an image name may use (ACR's `{{.Run.X}}`).
RUN_VARIABLES = ("ID", "Registry", "RegistryName", "Date", "OS", "Architecture", "TaskName")


def _arguments(body: dict[str, Any], seal: Any) -> tuple[Argument, ...]:
    given = body.get("arguments") or []
    if not isinstance(given, list):
        raise RunRequestInvalid("arguments must be a list")
    arguments = []
    for item in given:
        if not isinstance(item, dict):
            raise RunRequestInvalid("each argument must be an object")
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not _ARGUMENT_NAME.fullmatch(name):
            raise RunRequestInvalid(f"argument name {name!r} is not a build argument's")
        if not isinstance(value, str):
            raise RunRequestInvalid(f"argument {name}: value must be a string")
        secret = item.get("isSecret") is True
        arguments.append(Argument(name, seal(value) if secret else value, secret))
    return tuple(arguments)


def _dockerfile(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise RunRequestInvalid("dockerFilePath must be a path inside the context")
    return str(pure)


def parse_run_request(body: dict[str, Any], seal: Any) -> RunPlan:
    """The plan of a `scheduleRun` body; `seal(text)` seals secret argument values."""
    kind = body.get("type")
    if kind == DOCKER_BUILD:
        source = _text(body, "sourceLocation", required=True)
        assert source is not None
        names = body.get("imageNames") or []
        if not isinstance(names, list):
            raise RunRequestInvalid("imageNames must be a list")
        push = body.get("isPushEnabled") is True
        if push and not names:
            raise RunRequestInvalid("isPushEnabled needs imageNames")
        return RunPlan(
            kind=DOCKER_BUILD,
            source=source,
            timeout_seconds=_timeout(body),
            platform=_platform(body),
            image_names=tuple(_image_name(n) for n in names),
            push=push,
            no_cache=body.get("noCache") is True,
            dockerfile=_dockerfile(_text(body, "dockerFilePath", required=True) or ""),
            target=_text(body, "target"),
            arguments=_arguments(body, seal),
        )
    if kind == ENCODED_TASK:
        if body.get("sourceLocation"):
            raise RunRequestUnsupported("a run with a source context is not supported yet")
        return RunPlan(
            kind=ENCODED_TASK,
            source=None,
            timeout_seconds=_timeout(body),
            platform=_platform(body),
            command=single_command(_text(body, "encodedTaskContent", required=True) or ""),
        )
    if kind in ("FileTaskRunRequest", "TaskRunRequest"):
        raise RunRequestUnsupported(f"{kind} is not supported yet: see docs/tasks.md")
    raise RunRequestInvalid(f"unknown run request type {kind!r}")


def single_command(encoded: str) -> str:
    """The command of the task YAML `az acr run --cmd` encodes: `steps` with one `cmd`
    and nothing but `disableWorkingDirectoryOverride` and `timeout` beside it. Multi-step
    YAML is a later part of the tasks feature."""
    try:
        text = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RunRequestInvalid("encodedTaskContent must be base64 of UTF-8 YAML") from None
    command = None
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("version:") or stripped == "steps:":
            continue
        if stripped.startswith("- cmd:") and command is None:
            command = stripped.removeprefix("- cmd:").strip()
            continue
        if command is not None and stripped.split(":", 1)[0] in (
            "disableWorkingDirectoryOverride",
            "timeout",
        ):
            continue
        raise RunRequestUnsupported(
            "only a task with a single cmd step (az acr run --cmd) is supported yet"
        )
    if not command:
        raise RunRequestInvalid("the task has no cmd step")
    return command


def render(text: str, variables: dict[str, str]) -> str:
    """`text` with `{{.Run.X}}` replaced by the run's values; an unknown one is refused."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            raise RunRequestInvalid(f"unknown run variable {{{{.Run.{name}}}}}")
        return variables[name]

    return _RUN_VARIABLE.sub(value, text)
