"""ACR's task files (`acr-task.yaml`, versions v1.0.0 and v1.1.0) read into a `TaskFile`:
its steps (`build`, `push`, `cmd`) with their properties checked, the `when` graph
resolved (and refused when it names an unknown step or loops), the run variables and
`{{.Values.X}}` filled in first, as ACR fills its Go template before reading the YAML.
A key ACR does not document is refused; one ACR documents but Dockyard cannot honour
(networks, ports, Key Vault secrets, privileged steps...) is refused too, unless it has
its default value, so a task never runs other than it says. Pure: no I/O."""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from dockyard.tasks.requests import (
    RUN_VARIABLES,
    RunRequestInvalid,
    RunRequestUnsupported,
    aliases,
    render,
)

VERSIONS = ("v1.0.0", "v1.1.0", "1.0-preview-1")
ALIAS_VERSION = "v1.1.0"  # the first whose `$Registry`-style aliases ACR expands
DEFAULT_STEP_TIMEOUT = 600
MAX_TASK_FILE_CHARS = 1024 * 1024
WORKSPACE = "/workspace"
IMMEDIATELY = "-"
BUILD, PUSH, CMD = "build", "push", "cmd"
_STEP_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_VOLUME_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Top-level keys: those Dockyard reads, and those ACR documents that it accepts only
# empty (their defaults).
_TOP_KEYS = {"version", "stepTimeout", "workingDirectory", "env", "secrets", "volumes", "steps"}
_TOP_DEFAULT_ONLY = {"networks", "alias"}
# Step keys read, per kind (`push` takes only ACR's few), and those accepted only at
# their defaults.
_COMMON_STEP_KEYS = {"id", "when", "env", "timeout", "ignoreErrors", "startDelay"}
_STEP_KEYS = {
    PUSH: _COMMON_STEP_KEYS,
    BUILD: _COMMON_STEP_KEYS
    | {"workingDirectory", "retries", "retryDelay", "repeat", "disableWorkingDirectoryOverride"},
    CMD: _COMMON_STEP_KEYS
    | {
        "workingDirectory",
        "retries",
        "retryDelay",
        "repeat",
        "disableWorkingDirectoryOverride",
        "entryPoint",
        "detach",
        "user",
        "volumeMounts",
        "pull",
    },
}
_STEP_DEFAULT_ONLY = {
    "privileged": False,
    "network": "",
    "ports": [],
    "expose": [],
    "isolation": "default",
    "keep": False,
    "cpus": "",
    "cache": "",
    "exitedWith": [],
    "exitedWithout": [],
    "retryOnErrors": [],
}


class TaskFileInvalid(RunRequestInvalid):
    """The task file cannot be read as ACR reads it (a 400 at scheduleRun)."""


class TaskFileUnsupported(RunRequestUnsupported):
    """The task file asks for what ACR does but Dockyard does not (a 400, named)."""


@dataclass(frozen=True)
class BuildOptions:
    """A `build` step's `docker build` flags, as far as buildah takes them here."""

    tags: tuple[str, ...]
    dockerfile: str  # relative to the build context
    context: str  # relative to the run's context
    arguments: tuple[str, ...]  # NAME=VALUE
    target: str | None
    no_cache: bool


@dataclass(frozen=True)
class Step:
    id: str
    kind: str  # BUILD, PUSH or CMD
    after: tuple[str, ...]  # the steps it waits for; () = at once
    env: tuple[str, ...] = ()  # NAME=VALUE, the task's then the step's (the step's win)
    timeout: int = DEFAULT_STEP_TIMEOUT
    ignore_errors: bool = False
    start_delay: int = 0
    retries: int = 0
    retry_delay: int = 0
    repeat: int = 0
    working_directory: str | None = None  # None: the image's own
    build: BuildOptions | None = None
    images: tuple[str, ...] = ()  # PUSH
    command: tuple[str, ...] = ()  # CMD: image, then arguments
    entry_point: str | None = None
    detach: bool = False
    user: str | None = None
    pull: bool = False
    mounts: tuple[tuple[str, str], ...] = ()  # (volume name, absolute path)


@dataclass(frozen=True)
class TaskFile:
    version: str
    steps: tuple[Step, ...]
    volumes: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)

    def ready(self, done: set[str]) -> list[Step]:
        """The steps not in `done` whose dependencies all are."""
        return [s for s in self.steps if s.id not in done and set(s.after) <= done]


class AnyValue(dict[str, str]):
    """Stands for values not known yet (a values file read when the run starts): every
    `{{.Values.X}}` is there, with a harmless sample."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> str:
        return "x1"


def check_task_file(text: str, values: Mapping[str, str], more_values: bool) -> None:
    """Refuse (400) a task file that cannot run, before it is queued or stored: read
    with sample run variables and `values`; `more_values`: any other `{{.Values.X}}`
    may come later (a values file, a task run's `--set`)."""
    sample = {name: "x1" for name in RUN_VARIABLES}
    parse_task_file(text, sample, AnyValue(values) if more_values else values)


def parse_task_file(text: str, variables: Mapping[str, str], values: Mapping[str, str]) -> TaskFile:
    """`text` (the task file as given) filled with `variables` (`{{.Run.X}}`) and
    `values` (`{{.Values.X}}`), then read and checked whole."""
    try:
        filled = render(text, dict(variables), values)
    except RunRequestInvalid as exc:
        raise TaskFileInvalid(f"the task file: {exc.message}") from None
    if len(filled) > MAX_TASK_FILE_CHARS:
        raise TaskFileInvalid("the task file is larger than 1 MiB")
    try:
        # Anchors and aliases could make a small file a huge tree: refused.
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(filled, yaml.SafeLoader)):
            raise TaskFileUnsupported("YAML aliases (*name) are not supported in task files")
        data = yaml.safe_load(filled)
    except yaml.YAMLError as exc:
        raise TaskFileInvalid(f"the task file is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise TaskFileInvalid("the task file must be a YAML mapping with steps")
    _known(data, _TOP_KEYS, {k: None for k in _TOP_DEFAULT_ONLY}, "the task file")
    version = str(data.get("version") or "v1.0.0")
    if version.lower() not in VERSIONS:
        raise TaskFileInvalid(f"version {version!r}: one of {', '.join(VERSIONS)}")
    if version.lower() == ALIAS_VERSION:
        data = _expand(data, dict(variables))
    if data.get("secrets"):
        _secrets(data["secrets"])
    step_timeout = _number(data.get("stepTimeout"), "stepTimeout", DEFAULT_STEP_TIMEOUT, 1)
    working = _directory(data.get("workingDirectory"), "workingDirectory")
    env = _env(data.get("env"), "env")
    volumes = _volumes(data.get("volumes"))
    given = data.get("steps")
    if not isinstance(given, list) or not given:
        raise TaskFileInvalid("the task file needs a list of steps")
    steps: list[Step] = []
    for index, raw in enumerate(given):
        steps.append(_step(raw, index, steps, step_timeout, working, env, volumes))
    _check_graph(steps)
    return TaskFile(version=version, steps=tuple(steps), volumes=volumes)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{problem} (line {mark.line + 1})" if mark is not None else str(problem)


def _expand(data: Any, variables: dict[str, str]) -> Any:
    """v1.1.0's aliases in every string of the file."""
    if isinstance(data, str):
        return aliases(data, variables)
    if isinstance(data, list):
        return [_expand(item, variables) for item in data]
    if isinstance(data, dict):
        return {key: _expand(value, variables) for key, value in data.items()}
    return data


def _known(
    data: dict[str, Any], keys: set[str], default_only: Mapping[str, Any], where: str
) -> None:
    for key, value in data.items():
        if key in keys:
            continue
        if key in default_only:
            if value in (None, False, "", [], {}) or value == default_only[key]:
                continue
            if key == "privileged":
                raise TaskFileUnsupported(
                    f"{where}: privileged steps are refused: Dockyard cannot yet check that "
                    "the task's author is an Owner, which a privileged step needs"
                )
            raise TaskFileUnsupported(f"{where}: {key} is not supported by Dockyard")
        raise TaskFileInvalid(f"{where}: unknown key {key!r}")


def _number(value: Any, name: str, default: int, minimum: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise TaskFileInvalid(f"{name} must be a whole number, at least {minimum}")
    return value


def _flag(value: Any, name: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise TaskFileInvalid(f"{name} must be true or false")
    return value


def _string(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise TaskFileInvalid(f"{name} must be a string")
    return str(value)


def _directory(value: Any, name: str) -> str | None:
    text = _string(value, name)
    if text is not None and (not text.startswith("/") or "\x00" in text):
        raise TaskFileInvalid(f"{name} must be an absolute path in the container")
    return text


def _env(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TaskFileInvalid(f"{name} must be a list of NAME=VALUE")
    checked = []
    for item in value:
        text = _string(item, name) or ""
        variable, equals, _ = text.partition("=")
        if not equals or not _ENV_NAME.fullmatch(variable):
            raise TaskFileInvalid(f"{name}: {text!r} is not NAME=VALUE")
        checked.append(text)
    return tuple(checked)


def merge_env(task: tuple[str, ...], step: tuple[str, ...]) -> tuple[str, ...]:
    """The task's variables with the step's over them (a step's win, as in ACR)."""
    merged: dict[str, str] = {}
    for item in (*task, *step):
        name, _, value = item.partition("=")
        merged[name] = value
    return tuple(f"{name}={value}" for name, value in merged.items())


def _secrets(value: Any) -> None:
    """ACR's shape (`id`, `keyvault`, `clientID`), checked; fetching from Key Vault is
    not something Dockyard can do, so a task naming secrets is refused, saying so."""
    if not isinstance(value, list):
        raise TaskFileInvalid("secrets must be a list")
    for item in value:
        if not isinstance(item, dict) or not item.get("id"):
            raise TaskFileInvalid("each secret needs an id")
        _known(item, {"id", "keyvault", "clientID"}, {}, f"secret {item['id']}")
        if not item.get("keyvault"):
            raise TaskFileInvalid(f"secret {item['id']}: keyvault is required")
    raise TaskFileUnsupported(
        "secrets from Azure Key Vault are not supported by Dockyard: pass secret values "
        "with --set-secret and use them as {{.Values.NAME}}"
    )


def _volumes(value: Any) -> dict[str, dict[str, bytes]]:
    """`volumes: [{name, secret: {FILE: BASE64}}]`: files a `cmd` step may mount."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise TaskFileInvalid("volumes must be a list")
    volumes: dict[str, dict[str, bytes]] = {}
    for item in value:
        if not isinstance(item, dict):
            raise TaskFileInvalid("each volume must be a mapping")
        name = item.get("name")
        if not isinstance(name, str) or not _VOLUME_NAME.fullmatch(name):
            raise TaskFileInvalid(f"volume name {name!r}: letters, digits, - and _")
        if name in volumes:
            raise TaskFileInvalid(f"volume {name} is given twice")
        _known(item, {"name", "secret"}, {}, f"volume {name}")
        secret = item.get("secret")
        if not isinstance(secret, dict) or not secret:
            raise TaskFileInvalid(f"volume {name} needs secret: a map of file names to base64")
        files = {}
        for file_name, content in secret.items():
            if not isinstance(file_name, str) or not _VOLUME_NAME.fullmatch(
                file_name.replace(".", "_")
            ):
                raise TaskFileInvalid(f"volume {name}: file name {file_name!r}")
            try:
                files[file_name] = base64.b64decode(str(content), validate=True)
            except binascii.Error:
                raise TaskFileInvalid(f"volume {name}: {file_name} is not base64") from None
        volumes[name] = files
    return volumes


def _step(
    raw: Any,
    index: int,
    earlier: list[Step],
    step_timeout: int,
    working: str | None,
    task_env: tuple[str, ...],
    volumes: Mapping[str, Mapping[str, bytes]],
) -> Step:
    if not isinstance(raw, dict):
        raise TaskFileInvalid(f"step {index + 1} must be a mapping")
    kinds = [k for k in (BUILD, PUSH, CMD) if raw.get(k) not in (None, "", [])]
    if len(kinds) != 1:
        raise TaskFileInvalid(f"step {index + 1} must have exactly one of build, push or cmd")
    kind = kinds[0]
    step_id = _string(raw.get("id"), "id") or f"acb_step_{index}"
    if not _STEP_ID.fullmatch(step_id):
        raise TaskFileInvalid(f"step id {step_id!r}: letters, digits, '.', '-' and '_'")
    if any(s.id == step_id for s in earlier):
        raise TaskFileInvalid(f"step id {step_id} is given twice")
    where = f"step {step_id}"
    _known(raw, _STEP_KEYS[kind] | {kind}, _STEP_DEFAULT_ONLY, where)
    when = raw.get("when")
    if when is None:
        after: tuple[str, ...] = (earlier[-1].id,) if earlier else ()
    else:
        if not isinstance(when, list) or not all(isinstance(w, str) and w for w in when):
            raise TaskFileInvalid(f"{where}: when must be a list of step ids, or ['-']")
        if IMMEDIATELY in when and len(when) > 1:
            raise TaskFileInvalid(f"{where}: when cannot name steps beside '-'")
        if step_id in when:
            raise TaskFileInvalid(f"{where}: when names the step itself")
        after = () if when == [IMMEDIATELY] else tuple(dict.fromkeys(when))
    disable = _flag(raw.get("disableWorkingDirectoryOverride"), f"{where}: disable...Override")
    step_working = _directory(raw.get("workingDirectory"), f"{where}: workingDirectory")
    common: dict[str, Any] = {
        "id": step_id,
        "kind": kind,
        "after": after,
        "env": merge_env(task_env, _env(raw.get("env"), f"{where}: env")),
        "timeout": _number(raw.get("timeout"), f"{where}: timeout", step_timeout, 1),
        "ignore_errors": _flag(raw.get("ignoreErrors"), f"{where}: ignoreErrors"),
        "start_delay": _number(raw.get("startDelay"), f"{where}: startDelay", 0, 0),
        "retries": _number(raw.get("retries"), f"{where}: retries", 0, 0),
        "retry_delay": _number(raw.get("retryDelay"), f"{where}: retryDelay", 0, 0),
        "repeat": _number(raw.get("repeat"), f"{where}: repeat", 0, 0),
        "working_directory": step_working or (None if disable else working or WORKSPACE),
    }
    if kind == PUSH:
        return Step(**common, images=_push_images(raw[PUSH], where))
    if kind == BUILD:
        return Step(**common, build=build_options(_string(raw[BUILD], where) or "", where))
    try:
        words = tuple(shlex.split(_string(raw[CMD], f"{where}: cmd") or ""))
    except ValueError as exc:
        raise TaskFileInvalid(f"{where}: the cmd cannot be read: {exc}") from None
    return Step(
        **common,
        command=words,
        entry_point=_string(raw.get("entryPoint"), f"{where}: entryPoint"),
        detach=_flag(raw.get("detach"), f"{where}: detach"),
        user=_string(raw.get("user"), f"{where}: user"),
        pull=_flag(raw.get("pull"), f"{where}: pull"),
        mounts=_mounts(raw.get("volumeMounts"), where, volumes),
    )


def _push_images(value: Any, where: str) -> tuple[str, ...]:
    """A list of image names, or lists of them (ACR flattens)."""
    images: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        for name in item if isinstance(item, list) else [item]:
            text = _string(name, f"{where}: push")
            if text is None or any(c.isspace() for c in text):
                raise TaskFileInvalid(f"{where}: push takes image names")
            if text not in images:
                images.append(text)
    return tuple(images)


def _mounts(
    value: Any, where: str, volumes: Mapping[str, Mapping[str, bytes]]
) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TaskFileInvalid(f"{where}: volumeMounts must be a list")
    mounts: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, dict):
            raise TaskFileInvalid(f"{where}: each volume mount needs name and mountPath")
        _known(item, {"name", "mountPath"}, {}, f"{where}: volume mount")
        name, path = item.get("name"), _directory(item.get("mountPath"), f"{where}: mountPath")
        if name not in volumes:
            raise TaskFileInvalid(f"{where}: volume {name!r} is not one of the task's volumes")
        if path is None or any(path == p for _, p in mounts):
            raise TaskFileInvalid(f"{where}: each volume mount needs its own mountPath")
        mounts.append((name, path))
    return tuple(mounts)


def build_options(text: str, where: str) -> BuildOptions:
    """`docker build` flags of a `build` step: -t/--tag, -f/--file, --build-arg,
    --target, --no-cache, --pull (bases are always pulled afresh here) and one context."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise TaskFileInvalid(f"{where}: the build cannot be read: {exc}") from None
    tags: list[str] = []
    arguments: list[str] = []
    positional: list[str] = []
    options: dict[str, str | None] = {"file": None, "target": None}
    no_cache = False
    takes = {
        "-t": "tag",
        "--tag": "tag",
        "-f": "file",
        "--file": "file",
        "--build-arg": "arg",
        "--target": "target",
    }
    position = 0
    while position < len(words):
        word = words[position]
        name, equals, inline = word.partition("=")
        if word.startswith("-") and name in takes:
            if equals:
                value = inline
            else:
                position += 1
                if position == len(words):
                    raise TaskFileInvalid(f"{where}: {word} needs a value")
                value = words[position]
            kind = takes[name]
            if kind == "tag":
                tags.append(value)
            elif kind == "arg":
                arguments.append(value if "=" in value else f"{value}=")
            else:
                options[kind] = value
        elif word == "--no-cache":
            no_cache = True
        elif word in ("--pull", "--rm", "--force-rm", "-q", "--quiet"):
            pass
        elif word.startswith("-"):
            raise TaskFileUnsupported(f"{where}: the build flag {word} is not supported")
        else:
            positional.append(word)
        position += 1
    if len(positional) != 1:
        raise TaskFileInvalid(f"{where}: a build names one context (such as .)")
    context = _inside(positional[0], where, "context")
    dockerfile = _inside(options["file"] or "Dockerfile", where, "Dockerfile")
    return BuildOptions(
        tags=tuple(tags),
        dockerfile=dockerfile,
        context=context,
        arguments=tuple(arguments),
        target=options["target"],
        no_cache=no_cache,
    )


def _inside(path: str, where: str, what: str) -> str:
    """A path inside the run's context (a URL context is not supported)."""
    if "://" in path or path.startswith("git@"):
        raise TaskFileUnsupported(f"{where}: a {what} from a URL is not supported")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise TaskFileInvalid(f"{where}: the {what} must be a path inside the context")
    return str(pure)


def _check_graph(steps: list[Step]) -> None:
    """Every `when` names a step of the file, and no step waits on itself."""
    ids = {s.id for s in steps}
    for step in steps:
        for dependency in step.after:
            if dependency not in ids:
                raise TaskFileInvalid(f"step {step.id}: when names no step {dependency!r}")
    done: set[str] = set()
    while len(done) < len(steps):
        ready = [s.id for s in steps if s.id not in done and set(s.after) <= done]
        if not ready:
            stuck = sorted(s.id for s in steps if s.id not in done)
            raise TaskFileInvalid(f"the steps {', '.join(stuck)} wait on each other")
        done.update(ready)
