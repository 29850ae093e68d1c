"""A registry's tasks (`registries/tasks`): their properties checked as ACR's schema has
them (a Docker, FileTask or EncodedTask step, platform, timeout, agentConfiguration,
credentials, status, trigger, logTemplate), stored with their secret values sealed,
shown without them (or with them, for `listDetails`), updated field by field, and
turned into the run request a `TaskRunRequest` stands for. Triggers are stored and
shown; `timers.py`, `source_triggers.py` and `base_image_triggers.py` fire them. Never
starts a process."""

from __future__ import annotations

import base64
import binascii
import copy
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.common.clock import Clock
from dockyard.common.errors import RequestInvalid
from dockyard.lifecycle.purge import next_run
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.task_base_images import task_dependencies
from dockyard.metadata.task_definitions import (
    TaskRecord,
    TaskWrites,
    find_task,
    registry_tasks,
)
from dockyard.tasks.requests import (
    DOCKER_BUILD,
    ENCODED_TASK,
    FILE_TASK_REQUEST,
    MAX_TIMEOUT,
    MIN_TIMEOUT,
    RunRequestInvalid,
)
from dockyard.tasks.task_files import check_task_file

__all__ = ["TaskDefinitionInvalid", "TaskRecord", "TaskUnknown", "Tasks"]

DOCKER, FILE_TASK, ENCODED = "Docker", "FileTask", "EncodedTask"
STEP_TYPES = (DOCKER, FILE_TASK, ENCODED)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_TIMEOUT = 3600  # ACR's default for a task (600 s is an on-demand run's)
_NAME = re.compile(r"[A-Za-z0-9_-]{5,50}")
# Properties a step of each type may have, besides `type`, `contextPath` and
# `contextAccessToken`; any other is refused rather than silently dropped.
_STEP_FIELDS: dict[str, dict[str, type | tuple[type, ...]]] = {
    DOCKER: {
        "imageNames": list,
        "isPushEnabled": bool,
        "noCache": bool,
        "dockerFilePath": str,
        "target": str,
        "arguments": list,
    },
    FILE_TASK: {"taskFilePath": str, "valuesFilePath": str, "values": list},
    ENCODED: {"encodedTaskContent": str, "encodedValuesContent": str, "values": list},
}
_REQUIRED = {DOCKER: "dockerFilePath", FILE_TASK: "taskFilePath", ENCODED: "encodedTaskContent"}
_READ_ONLY_STEP = ("baseImageDependencies",)
# Dockyard's own field of a source trigger: the secret its git host signs push webhooks
# with (ACR keeps its own out of sight, having registered the webhook itself). Made when
# the trigger is created without one; shown, like every secret, by `listDetails` only.
WEBHOOK_SECRET = "webhookSecret"


class TaskUnknown(RequestInvalid):
    code = "ResourceNotFound"


class TaskDefinitionInvalid(RequestInvalid):
    code = "InvalidParameter"


class TaskDisabled(RequestInvalid):
    code = "TaskDisabled"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise TaskDefinitionInvalid(
            f"task name {name!r}: 5 to 50 letters, digits, hyphens or underscores"
        )
    return name


def _of(value: Any, kind: type | tuple[type, ...], field: str) -> Any:
    if value is not None and (
        not isinstance(value, kind) or (isinstance(value, bool) and kind is int)
    ):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise TaskDefinitionInvalid(f"{field} must be a {names}")
    return value


def _named_values(items: Any, field: str) -> list[dict[str, Any]]:
    """`arguments` or `values`: `[{name, value, isSecret}]`."""
    checked = []
    for item in _of(items, list, field) or []:
        _of(item, dict, field)
        name, value = item.get("name"), item.get("value")
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise TaskDefinitionInvalid(f"each of {field} needs a name and a string value")
        secret = _of(item.get("isSecret"), bool, f"{field}.isSecret") is True
        checked.append({"type": item.get("type"), "name": name, "value": value, "isSecret": secret})
    return checked


def _step(step: Any) -> dict[str, Any]:
    _of(step, dict, "step")
    kind = step.get("type")
    if kind not in STEP_TYPES:
        raise TaskDefinitionInvalid(f"step.type must be one of {', '.join(STEP_TYPES)}")
    fields = _STEP_FIELDS[kind]
    checked: dict[str, Any] = {"type": kind}
    for key, value in step.items():
        if key in ("type", *_READ_ONLY_STEP) or value is None:
            continue
        if key in ("contextPath", "contextAccessToken"):
            checked[key] = _of(value, str, f"step.{key}")
        elif key in ("arguments", "values"):
            if key not in fields:
                raise TaskDefinitionInvalid(f"a {kind} step has no {key}")
            checked[key] = _named_values(value, f"step.{key}")
        elif key in fields:
            checked[key] = _of(value, fields[key], f"step.{key}")
        else:
            raise TaskDefinitionInvalid(f"a {kind} step has no {key}")
    if not checked.get(_REQUIRED[kind]):
        raise TaskDefinitionInvalid(f"a {kind} step needs {_REQUIRED[kind]}")
    if kind == DOCKER:
        names = checked.setdefault("imageNames", [])
        if not all(isinstance(n, str) and n for n in names):
            raise TaskDefinitionInvalid("step.imageNames must be non-empty strings")
        checked.setdefault("isPushEnabled", True)
        checked.setdefault("noCache", False)
        checked.setdefault("arguments", [])
    else:
        checked.setdefault("values", [])
    if kind == ENCODED:
        _check_encoded(checked)
    return checked


def _check_encoded(step: dict[str, Any]) -> None:
    """An inline task file that cannot run is refused when the task is stored; its
    values may come later (`az acr task run --set`)."""
    try:
        text = base64.b64decode(step["encodedTaskContent"], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise TaskDefinitionInvalid("encodedTaskContent must be base64 of UTF-8 YAML") from None
    values = {v["name"]: "x1" if v["isSecret"] else v["value"] for v in step["values"]}
    check_task_file(text, values, more_values=True)


def _status(value: Any, field: str) -> str:
    text = str(_of(value, str, field) or "Enabled")
    if text.lower() not in ("enabled", "disabled"):
        raise TaskDefinitionInvalid(f"{field} must be Enabled or Disabled")
    return text.capitalize()


def _platform(value: Any) -> dict[str, Any]:
    platform = _of(value, dict, "platform") or {}
    os_name = str(_of(platform.get("os"), str, "platform.os") or "Linux")
    if os_name.lower() not in ("linux", "windows"):
        raise TaskDefinitionInvalid("platform.os must be Linux or Windows")
    checked = {"os": os_name.capitalize()}
    for key in ("architecture", "variant"):
        if platform.get(key) is not None:
            checked[key] = _of(platform[key], str, f"platform.{key}")
    checked.setdefault("architecture", "amd64")
    return checked


def _timeout(value: Any) -> int:
    if value is None:
        return DEFAULT_TIMEOUT
    if not isinstance(value, int) or isinstance(value, bool):
        raise TaskDefinitionInvalid("timeout must be a whole number of seconds")
    if not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise TaskDefinitionInvalid(f"timeout must be {MIN_TIMEOUT} to {MAX_TIMEOUT} seconds")
    return value


def _trigger(value: Any) -> dict[str, Any]:
    """Stored as given once its shape is ACR's: named timers with a schedule, source
    triggers with a repository, a base image trigger."""
    trigger = _of(value, dict, "trigger") or {}
    checked: dict[str, Any] = {}
    for timer in _of(trigger.get("timerTriggers"), list, "trigger.timerTriggers") or []:
        _of(timer, dict, "trigger.timerTriggers")
        if not isinstance(timer.get("name"), str) or not isinstance(timer.get("schedule"), str):
            raise TaskDefinitionInvalid("each timer trigger needs a name and a schedule")
        if not 0 < len(timer["name"]) <= 64:
            raise TaskDefinitionInvalid("a timer trigger's name is 1 to 64 characters")
        try:
            next_run(timer["schedule"], _EPOCH)
        except RequestInvalid as exc:
            raise TaskDefinitionInvalid(f"timer trigger {timer['name']}: {exc.message}") from None
        timer = {**timer, "status": _status(timer.get("status"), "timer trigger status")}
        checked.setdefault("timerTriggers", []).append(timer)
    for source in _of(trigger.get("sourceTriggers"), list, "trigger.sourceTriggers") or []:
        _of(source, dict, "trigger.sourceTriggers")
        repository = _of(source.get("sourceRepository"), dict, "sourceRepository") or {}
        if not isinstance(source.get("name"), str) or not repository.get("repositoryUrl"):
            raise TaskDefinitionInvalid(
                "each source trigger needs a name and sourceRepository.repositoryUrl"
            )
        _of(repository.get("sourceControlAuthProperties"), dict, "sourceControlAuthProperties")
        events = _of(source.get("sourceTriggerEvents"), list, "sourceTriggerEvents") or ["commit"]
        if not set(events) <= {"commit", "pullrequest"}:
            raise TaskDefinitionInvalid("sourceTriggerEvents are commit and pullrequest")
        secret = _of(source.get(WEBHOOK_SECRET), str, WEBHOOK_SECRET) or secrets.token_hex(20)
        source = {
            **source,
            "sourceTriggerEvents": events,
            "status": _status(source.get("status"), "source trigger status"),
            WEBHOOK_SECRET: secret,
        }
        checked.setdefault("sourceTriggers", []).append(source)
    base = _of(trigger.get("baseImageTrigger"), dict, "trigger.baseImageTrigger")
    if base:
        if not isinstance(base.get("name"), str):
            raise TaskDefinitionInvalid("the base image trigger needs a name")
        kind = base.get("baseImageTriggerType") or "Runtime"
        if kind not in ("All", "Runtime"):
            raise TaskDefinitionInvalid("baseImageTriggerType must be All or Runtime")
        checked["baseImageTrigger"] = {
            **base,
            "baseImageTriggerType": kind,
            "status": _status(base.get("status"), "base image trigger status"),
        }
    return checked


def _credentials(value: Any) -> dict[str, Any]:
    credentials = _of(value, dict, "credentials") or {}
    custom = _of(credentials.get("customRegistries"), dict, "credentials.customRegistries") or {}
    for server, entry in custom.items():
        _of(entry, dict, f"credentials.customRegistries.{server}")
        for key in ("userName", "password"):
            secret = _of(entry.get(key), dict, f"credentials.customRegistries.{server}.{key}")
            if secret is not None and not isinstance(secret.get("value"), str):
                raise TaskDefinitionInvalid(f"{server}: {key}.value must be a string")
    _of(credentials.get("sourceRegistry"), dict, "credentials.sourceRegistry")
    return credentials


def check_properties(properties: dict[str, Any]) -> dict[str, Any]:
    """A task's properties as stored (secrets still plain), defaults filled."""
    if properties.get("step") is None:
        raise TaskDefinitionInvalid("a task needs a step")
    agent = _of(properties.get("agentConfiguration"), dict, "agentConfiguration") or {}
    checked: dict[str, Any] = {
        "status": _status(properties.get("status"), "status"),
        "platform": _platform(properties.get("platform")),
        "agentConfiguration": {"cpu": _of(agent.get("cpu"), int, "agentConfiguration.cpu") or 2},
        "timeout": _timeout(properties.get("timeout")),
        "step": _step(properties["step"]),
        "trigger": _trigger(properties.get("trigger")),
        "credentials": _credentials(properties.get("credentials")),
        "isSystemTask": _of(properties.get("isSystemTask"), bool, "isSystemTask") is True,
    }
    for key in ("logTemplate", "agentPoolName"):
        if properties.get(key) is not None:
            checked[key] = _of(properties[key], str, key)
    return checked


def merged(stored: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """A PATCH's properties over the stored ones: each property given replaces its own;
    a step of the same type is updated field by field, another type replaces it; a
    trigger is updated by name (what `az acr task timer add|update` send)."""
    result = copy.deepcopy(stored)
    for key, value in change.items():
        if value is None or key in ("provisioningState", "creationDate"):
            continue
        if key == "step" and isinstance(value, dict):
            step = result.get("step") or {}
            same = value.get("type") in (None, step.get("type"))
            result["step"] = {**step, **value} if same else value
        elif key == "trigger" and isinstance(value, dict):
            result["trigger"] = _merged_trigger(result.get("trigger") or {}, value)
        elif key in ("agentConfiguration", "platform") and isinstance(value, dict):
            result[key] = {**(result.get(key) or {}), **value}
        else:
            result[key] = value
    return result


def _merged_trigger(stored: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    """Timers and source triggers updated field by field by name, or added; the base
    image trigger field by field."""
    result = dict(stored)
    for key in ("timerTriggers", "sourceTriggers"):
        given = change.get(key)
        if not isinstance(given, list):
            continue
        triggers = {t["name"]: t for t in result.get(key, [])}
        for item in given:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise TaskDefinitionInvalid(f"each of trigger.{key} needs a name")
            fields = {k: v for k, v in item.items() if v is not None}
            triggers[item["name"]] = {**triggers.get(item["name"], {}), **fields}
        result[key] = list(triggers.values())
    base = change.get("baseImageTrigger")
    if isinstance(base, dict):
        fields = {k: v for k, v in base.items() if v is not None}
        result["baseImageTrigger"] = {**(result.get("baseImageTrigger") or {}), **fields}
    return result


def secret_slots(properties: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """Where a task's secret values are: (the object holding one, its key)."""
    step = properties.get("step") or {}
    if step.get("contextAccessToken"):
        yield step, "contextAccessToken"
    for item in (*step.get("arguments", ()), *step.get("values", ())):
        if item.get("isSecret"):
            yield item, "value"
    if step.get("encodedValuesContent"):
        yield step, "encodedValuesContent"
    for source in (properties.get("trigger") or {}).get("sourceTriggers", ()):
        auth = (source.get("sourceRepository") or {}).get("sourceControlAuthProperties") or {}
        for key in ("token", "refreshToken"):
            if auth.get(key):
                yield auth, key
        if source.get(WEBHOOK_SECRET):
            yield source, WEBHOOK_SECRET
    custom = (properties.get("credentials") or {}).get("customRegistries") or {}
    for entry in custom.values():
        for key in ("userName", "password"):
            secret = entry.get(key)
            if secret and secret.get("value") and secret.get("type", "Opaque") == "Opaque":
                yield secret, "value"


def _with_secrets(
    properties: dict[str, Any], change: Callable[[str], str | None]
) -> dict[str, Any]:
    result = copy.deepcopy(properties)
    for holder, key in list(secret_slots(result)):
        holder[key] = change(holder[key])
    return result


@dataclass(frozen=True)
class Task:
    """A task as shown: `properties` with its secrets open, or removed."""

    record: TaskRecord
    properties: dict[str, Any]

    @property
    def name(self) -> str:
        return self.record.name


class Tasks:
    def __init__(
        self,
        meta: Metadata,
        seal: Callable[[str, int], str],
        unseal: Callable[[str, int], str],
        clock: Clock,
    ) -> None:
        self._meta = meta
        self._seal = seal
        self._unseal = unseal
        self._clock = clock

    def exists(self, registry: RegistryRecord, name: str) -> bool:
        return find_task(self._meta, registry.id, name) is not None

    def put(
        self,
        registry: RegistryRecord,
        name: str,
        location: str,
        tags: dict[str, str],
        properties: dict[str, Any],
    ) -> Task:
        """The task created, or replaced whole."""
        checked = check_properties(properties)
        return self._store(registry, check_name(name), location, tags, checked)

    def update(
        self,
        registry: RegistryRecord,
        name: str,
        tags: dict[str, str] | None,
        change: dict[str, Any],
    ) -> Task:
        """The properties `change` gives over the stored ones, checked again whole; the
        secrets it does not give stay as they were."""
        record = self._record(registry, name)
        plain = self._opened(record)
        checked = check_properties(merged(plain, change))
        return self._store(
            registry,
            name,
            record.location,
            record.tags if tags is None else tags,
            checked,
        )

    def get(self, registry: RegistryRecord, name: str, secrets: bool = False) -> Task:
        record = self._record(registry, name)
        properties = self._opened(record) if secrets else _hidden(record.properties)
        return Task(record, self._with_dependencies(record, properties))

    def list(self, registry: RegistryRecord) -> list[Task]:
        return [
            Task(r, self._with_dependencies(r, _hidden(r.properties)))
            for r in registry_tasks(self._meta, registry.id)
        ]

    def _with_dependencies(self, record: TaskRecord, properties: dict[str, Any]) -> dict[str, Any]:
        """The step's `baseImageDependencies`, as ACR shows what its last build started
        from (`base_image_triggers.py` records them)."""
        found = task_dependencies(self._meta, record.id)
        if found:
            properties["step"]["baseImageDependencies"] = [
                {
                    "type": d.image.kind,
                    "registry": d.image.host,
                    "repository": d.image.repository,
                    "tag": d.image.tag,
                    "digest": d.image.digest,
                }
                for d in found
            ]
        return properties

    def delete(self, registry: RegistryRecord, name: str) -> bool:
        with self._meta.transaction() as tx:
            return TaskWrites(tx).delete(registry.id, name)

    def run_request(
        self, registry: RegistryRecord, name: str, overrides: dict[str, Any]
    ) -> dict[str, Any]:
        """The quick run request a run of the task is (with its secrets open, to be
        sealed again as any run request's): the step's Docker build or encoded task,
        with `overrideTaskStepProperties`' context, file, target and arguments."""
        task = self.get(registry, name, secrets=True)
        properties = task.properties
        if properties["status"] != "Enabled":
            raise TaskDisabled(f"the task {name} is disabled: enable it to run it")
        step = properties["step"]
        context = overrides.get("contextPath") or step.get("contextPath")
        common = {
            "platform": {
                "os": properties["platform"]["os"].lower(),
                "architecture": properties["platform"].get("architecture"),
            },
            "timeout": properties["timeout"],
        }
        if step["type"] == DOCKER:
            if not context:
                raise RunRequestInvalid(f"the task {name} has no context: run it with one")
            arguments = {a["name"]: a for a in step.get("arguments", [])}
            for given in _named_values(overrides.get("arguments"), "arguments"):
                arguments[given["name"]] = given
            token = None if overrides.get("contextPath") else _context_token(properties)
            return {
                **common,
                "type": DOCKER_BUILD,
                "sourceLocation": context,
                "contextAccessToken": token,
                "imageNames": step.get("imageNames", []),
                "isPushEnabled": step.get("isPushEnabled", True),
                "noCache": step.get("noCache", False),
                "dockerFilePath": overrides.get("file") or step["dockerFilePath"],
                "target": overrides.get("target") or step.get("target"),
                "arguments": list(arguments.values()),
            }
        values = {v["name"]: v for v in step.get("values", [])}
        for given in _named_values(overrides.get("values"), "values"):
            values[given["name"]] = given
        files = {
            "sourceLocation": context,
            "contextAccessToken": None
            if overrides.get("contextPath")
            else _context_token(properties),
            "values": list(values.values()),
            "encodedValuesContent": step.get("encodedValuesContent"),
        }
        if step["type"] == ENCODED:
            return {
                **common,
                **files,
                "type": ENCODED_TASK,
                "encodedTaskContent": step["encodedTaskContent"],
            }
        if not context:
            raise RunRequestInvalid(f"the task {name} has no context: run it with one")
        return {
            **common,
            **files,
            "type": FILE_TASK_REQUEST,
            "taskFilePath": overrides.get("file") or step["taskFilePath"],
            "valuesFilePath": step.get("valuesFilePath"),
        }

    def _record(self, registry: RegistryRecord, name: str) -> TaskRecord:
        record = find_task(self._meta, registry.id, name)
        if record is None:
            raise TaskUnknown(f"The task '{name}' was not found in the registry.")
        return record

    def _opened(self, record: TaskRecord) -> dict[str, Any]:
        return _with_secrets(record.properties, lambda s: self._unseal(s, record.registry_id))

    def _store(
        self,
        registry: RegistryRecord,
        name: str,
        location: str,
        tags: dict[str, str],
        properties: dict[str, Any],
    ) -> Task:
        sealed = _with_secrets(properties, lambda s: self._seal(s, registry.id))
        now = self._clock()
        timers = [
            (timer["name"], timer["schedule"], next_run(timer["schedule"], now))
            for timer in properties["trigger"].get("timerTriggers", [])
            if timer["status"] == "Enabled"
        ]
        with self._meta.transaction() as tx:
            TaskWrites(tx).put(registry.id, name, location, tags, sealed, timers)
        return self.get(registry, name)


def _context_token(properties: dict[str, Any]) -> str | None:
    """What a run fetches the task's git context with: the step's `contextAccessToken`,
    else a source trigger's token (az sends the same `--git-access-token` as both)."""
    token = properties["step"].get("contextAccessToken")
    for source in properties["trigger"].get("sourceTriggers", ()):
        auth = (source.get("sourceRepository") or {}).get("sourceControlAuthProperties") or {}
        token = token or auth.get("token")
    return token


def _hidden(properties: dict[str, Any]) -> dict[str, Any]:
    """ACR shows no secret value but through `listDetails`."""
    return _with_secrets(properties, lambda _: None)
