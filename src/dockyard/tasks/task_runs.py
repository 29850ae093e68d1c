"""A registry's task runs (`registries/taskRuns`, ARM's preview resource that
`az acr taskrun` reads and templates create): a run request kept under a name. Creating
one runs it; it runs again when its `forceUpdateTag` changes or a new request replaces
it, and a PUT of the same request and tag changes nothing (ARM's idempotent deploys).
Its `runResult` is its latest run (`Runs`); deleting it leaves the runs, as ACR does."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dockyard.common.errors import RequestInvalid
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.task_run_resources import (
    TaskRunRecord,
    delete_task_run,
    find_task_run,
    put_task_run,
    registry_task_runs,
)
from dockyard.metadata.tasks import find_run
from dockyard.tasks.runs import RunRecord, Runs

TASK_RUN_REQUEST = "TaskRunRequest"
# Keys whose values are secrets wherever they appear in a run request: what a task's
# `definitions.secret_slots` seals (custom registry credentials, context and source
# tokens, a values file's content), never stored in what is shown.
_SECRET_KEYS = frozenset(
    {"password", "userName", "token", "refreshToken", "contextAccessToken", "encodedValuesContent"}
)


class TaskRunUnknown(RequestInvalid):
    code = "ResourceNotFound"


class TaskRunInvalid(RequestInvalid):
    code = "InvalidRequestContent"


@dataclass(frozen=True)
class TaskRunView:
    record: TaskRunRecord
    run: RunRecord


def shown(value: Any) -> Any:
    """A run request as GET shows it: the value of every `isSecret` item and every
    secret key (`_SECRET_KEYS`) left out."""
    if isinstance(value, list):
        return [shown(item) for item in value]
    if not isinstance(value, dict):
        return value
    secret = value.get("isSecret") is True
    return {
        key: shown(item)
        for key, item in value.items()
        if key not in _SECRET_KEYS and not (secret and key == "value")
    }


def _force_tag(properties: dict[str, Any]) -> str | None:
    tag = properties.get("forceUpdateTag")
    if tag is not None and not isinstance(tag, str):
        raise TaskRunInvalid("properties.forceUpdateTag must be a string")
    return tag


def _run_request(properties: dict[str, Any], required: bool) -> dict[str, Any] | None:
    request = properties.get("runRequest")
    if request is None and not required:
        return None
    if not isinstance(request, dict):
        raise TaskRunInvalid("properties.runRequest must be an object (a run request)")
    return request


class TaskRuns:
    def __init__(self, meta: Metadata, runs: Runs) -> None:
        self._meta = meta
        self._runs = runs

    def get(self, registry: RegistryRecord, name: str) -> TaskRunView:
        found = find_task_run(self._meta, registry.id, name)
        if found is None:
            raise TaskRunUnknown(f"The task run '{name}' was not found in the registry.")
        return self._view(found)

    def list(self, registry: RegistryRecord) -> list[TaskRunView]:
        return [self._view(found) for found in registry_task_runs(self._meta, registry.id)]

    def put(
        self,
        registry: RegistryRecord,
        name: str,
        location: str,
        identity: dict[str, Any] | None,
        properties: dict[str, Any],
    ) -> TaskRunView:
        """Create or replace: a new run unless the same request and tag are there."""
        request = _run_request(properties, required=True)
        assert request is not None
        tag = _force_tag(properties)
        found = find_task_run(self._meta, registry.id, name)
        unchanged = found is not None and found.run_request == shown(request)
        if found is not None and unchanged and found.force_update_tag == tag:
            return self._store(replace(found, location=location, identity=identity))
        run = self._schedule(registry, request)
        return self._store(
            TaskRunRecord(
                registry.id,
                name,
                location,
                identity,
                shown(request),
                tag,
                run.number,
                run.created_at,
                run.created_at,
            )
        )

    def update(
        self,
        registry: RegistryRecord,
        name: str,
        identity: dict[str, Any] | None,
        properties: dict[str, Any],
    ) -> TaskRunView:
        """PATCH: a new request runs it; a changed `forceUpdateTag` alone runs the latest
        run's plan again (secrets included, which the shown request lacks)."""
        view = self.get(registry, name)
        record = view.record
        request = _run_request(properties, required=False)
        tag = _force_tag(properties) if "forceUpdateTag" in properties else None
        if identity is not None:
            record = replace(record, identity=identity)
        if request is not None:
            run = self._schedule(registry, request)
            record = replace(record, run_request=shown(request), run_number=run.number)
        elif tag is not None and tag != record.force_update_tag:
            run = self._runs.requeue(registry, view.run)
            record = replace(record, run_number=run.number)
        if tag is not None:
            record = replace(record, force_update_tag=tag)
        return self._store(record)

    def delete(self, registry: RegistryRecord, name: str) -> bool:
        with self._meta.transaction() as tx:
            return delete_task_run(tx, registry.id, name)

    def _schedule(self, registry: RegistryRecord, request: dict[str, Any]) -> RunRecord:
        if request.get("type") == TASK_RUN_REQUEST:
            task = str(request.get("taskId") or "").rstrip("/").rsplit("/", 1)[-1]
            if not task:
                raise TaskRunInvalid("a TaskRunRequest needs taskId, the task's resource id")
            overrides = request.get("overrideTaskStepProperties") or {}
            return self._runs.schedule_task(registry, task, overrides)
        return self._runs.schedule(registry, request)

    def _store(self, record: TaskRunRecord) -> TaskRunView:
        with self._meta.transaction() as tx:
            put_task_run(tx, record)
        stored = find_task_run(self._meta, record.registry_id, record.name)
        assert stored is not None
        return self._view(stored)

    def _view(self, record: TaskRunRecord) -> TaskRunView:
        run = find_run(self._meta, record.registry_id, record.run_number)
        assert run is not None  # runs are never deleted while their registry lives
        return TaskRunView(record, run)
