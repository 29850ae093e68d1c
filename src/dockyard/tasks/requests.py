"""What a run is asked to do: ACR's run requests (`scheduleRun`'s body) checked and
reduced to a `RunPlan`, and the run variables (`{{.Run.X}}`, `{{.Values.X}}` and the
`$Registry`-style aliases) a run's texts may use. A Docker build (`DockerBuildRequest`,
what `az acr build` sends), a task file given inline (`EncodedTaskRunRequest`: `az acr
run --cmd`, or `-f FILE /dev/null`) or found in the context (`FileTaskRunRequest`: `az
acr run -f FILE DIR`); the task file itself is `task_files.py`'s. Pure: no I/O."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import yaml

from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.common.names import check_repository_name, check_tag
from dockyard.tasks.platforms import PlatformInvalid, PlatformUnsupported, checked_platform

DOCKER_BUILD, ENCODED_TASK = "DockerBuildRequest", "EncodedTaskRunRequest"
FILE_TASK_REQUEST = "FileTaskRunRequest"
QUICK_BUILD, QUICK_RUN = "QuickBuild", "QuickRun"
MIN_TIMEOUT, MAX_TIMEOUT = 300, 28_800
_ARGUMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TEMPLATE = re.compile(r"\{\{\s*\.(Run|Values)\.(\w+)\s*\}\}")


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
    task_text: str | None = None  # ENCODED_TASK: the task file given
    task_file: str | None = None  # FILE_TASK_REQUEST: the task file's path in the context
    values_file: str | None = None  # FILE_TASK_REQUEST: a values file's, if any
    values: tuple[Argument, ...] = ()  # `{{.Values.X}}` (`--set`, `--set-secret`)
    source_token: str | None = None  # sealed: a git context's access token

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
            "taskText": self.task_text,
            "taskFile": self.task_file,
            "valuesFile": self.values_file,
            "values": [{"name": a.name, "value": a.value, "secret": a.secret} for a in self.values],
            "sourceToken": self.source_token,
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
            task_text=data.get("taskText"),
            task_file=data.get("taskFile"),
            values_file=data.get("valuesFile"),
            values=tuple(
                Argument(a["name"], a["value"], a["secret"]) for a in data.get("values", ())
            ),
            source_token=data.get("sourceToken"),
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
    try:
        return checked_platform(body.get("platform"))
    except PlatformUnsupported as exc:
        raise RunRequestUnsupported(exc.message) from None
    except PlatformInvalid as exc:
        raise RunRequestInvalid(exc.message) from None


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
RUN_VARIABLES = (
    "ID",
    "Registry",
    "RegistryName",
    "Date",
    "OS",
    "Architecture",
    "TaskName",
    "Commit",
    "Branch",
)


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


def _dockerfile(path: str, field: str = "dockerFilePath") -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise RunRequestInvalid(f"{field} must be a path inside the context")
    return str(pure)


def _sealed_token(body: dict[str, Any], seal: Any) -> str | None:
    """A git context's access token (a task's run request carries its context's)."""
    token = _text(body, "contextAccessToken")
    return None if token is None else seal(token)


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
            source_token=_sealed_token(body, seal),
        )
    if kind in (ENCODED_TASK, FILE_TASK_REQUEST):
        encoded = kind == ENCODED_TASK
        source = _text(body, "sourceLocation", required=not encoded)
        return RunPlan(
            kind=kind,
            source=source,
            timeout_seconds=_timeout(body),
            platform=_platform(body),
            task_text=_decoded(body, "encodedTaskContent", required=True) if encoded else None,
            task_file=None if encoded else _in_context(_text(body, "taskFilePath") or "acb.yaml"),
            values_file=_in_context(_text(body, "valuesFilePath")),
            values=_values(body, seal),
            source_token=_sealed_token(body, seal),
        )
    if kind == "TaskRunRequest":
        raise RunRequestUnsupported(f"{kind} is not supported yet: see docs/tasks.md")
    raise RunRequestInvalid(f"unknown run request type {kind!r}")


def _decoded(body: dict[str, Any], key: str, required: bool = False) -> str | None:
    """A base64 field of UTF-8 text (a task file, a values file)."""
    encoded = _text(body, key, required)
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise RunRequestInvalid(f"{key} must be base64 of UTF-8 YAML") from None


def _in_context(path: str | None) -> str | None:
    """A file's path inside the run's context, if one is given."""
    return None if path is None else _dockerfile(path, "taskFilePath and valuesFilePath")


def _values(body: dict[str, Any], seal: Any) -> tuple[Argument, ...]:
    """`values` (`--set`, `--set-secret`), over those of `encodedValuesContent` (a YAML
    map, sealed as secret: a task keeps it among its secret values)."""
    given: dict[str, Argument] = {}
    text = _decoded(body, "encodedValuesContent")
    if text:
        try:
            mapping = yaml.safe_load(text)
        except yaml.YAMLError:
            raise RunRequestInvalid("encodedValuesContent must be a YAML map") from None
        if not isinstance(mapping, dict):
            raise RunRequestInvalid("encodedValuesContent must be a YAML map")
        for name, value in mapping.items():
            given[str(name)] = Argument(str(name), seal(str(value)), True)
    items = body.get("values") or []
    if not isinstance(items, list):
        raise RunRequestInvalid("values must be a list")
    for item in items:
        if not isinstance(item, dict):
            raise RunRequestInvalid("each value must be an object")
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not re.fullmatch(r"\w+", name):
            raise RunRequestInvalid(f"value name {name!r}: letters, digits and _")
        if not isinstance(value, str):
            raise RunRequestInvalid(f"value {name}: must be a string")
        secret = item.get("isSecret") is True
        given[name] = Argument(name, seal(value) if secret else value, secret)
    return tuple(given.values())


def render(text: str, variables: dict[str, str], values: Mapping[str, str] | None = None) -> str:
    """`text` with `{{.Run.X}}` replaced by the run's values and `{{.Values.X}}` by
    `values`; an unknown one is refused."""

    def value(match: re.Match[str]) -> str:
        scope, name = match.groups()
        known = variables if scope == "Run" else ({} if values is None else values)
        if name not in known:
            hint = "" if scope == "Run" else ": give it with --set"
            raise RunRequestInvalid(f"unknown value {{{{.{scope}.{name}}}}}{hint}")
        return known[name]

    return _TEMPLATE.sub(value, text)


def aliases(text: str, variables: dict[str, str]) -> str:
    """Task files v1.1.0's `$Registry`-style aliases of the run variables (a longer name
    such as `$IDENTITY` is left alone)."""
    if not variables:
        return text
    names = "|".join(sorted(map(re.escape, variables), key=len, reverse=True))
    return re.sub(rf"\$({names})(?![A-Za-z0-9_])", lambda m: variables[m.group(1)], text)
