"""A registry's runs: scheduling one (`scheduleRun`), reading them (one, or a listing
with ACR's `$filter` and `$top`), canceling one. The runner (`runner.py`) executes what
is queued; this module never starts a process."""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from dockyard.common.errors import RequestInvalid
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.tasks import (
    FINISHED,
    QUEUED,
    RUNNING,
    RunRecord,
    RunWrites,
    find_run,
    run_number,
    runs,
)
from dockyard.tasks.definitions import Tasks
from dockyard.tasks.git_contexts import parse_git_context
from dockyard.tasks.requests import (
    DOCKER_BUILD,
    RunPlan,
    RunRequestInvalid,
    RunRequestUnsupported,
    parse_run_request,
)
from dockyard.tasks.sources import BuildSources
from dockyard.tasks.task_files import check_task_file

__all__ = ["RunFilter", "RunRecord", "Runs", "parse_filter"]

STATUSES = frozenset({QUEUED, RUNNING, *FINISHED})
AUTO_BUILD, AUTO_RUN = "AutoBuild", "AutoRun"  # a task's runs
MAX_TOP = 1000
MAX_TASK_FILE_BYTES = 1024 * 1024


class RunUnknown(RequestInvalid):
    code = "ResourceNotFound"


class RunFilterInvalid(RequestInvalid):
    code = "InvalidFilter"


@dataclass(frozen=True)
class RunFilter:
    """What ACR's run `$filter` selects, of what Dockyard reads of it so far."""

    task_name: str | None = None
    statuses: frozenset[str] | None = None
    run_id: str | None = None
    run_type: str | None = None


# One clause: `Field eq 'value'`; clauses are joined by `and`.
_CLAUSE = re.compile(r"\s*(\w+)\s+eq\s+'([^']*)'\s*", re.IGNORECASE)


def parse_filter(text: str | None) -> RunFilter:
    """`TaskName eq 'T' and Status eq 'Succeeded'` (also RunId, RunType); anything else
    (`contains(...)`, `or`) is refused rather than ignored."""
    if not text or not text.strip():
        return RunFilter()
    values: dict[str, str] = {}
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        found = _CLAUSE.fullmatch(clause)
        if found is None:
            raise RunFilterInvalid(
                f"unsupported $filter clause {clause!r}: use FIELD eq 'VALUE' joined by and, "
                "on TaskName, Status, RunId or RunType"
            )
        key = found.group(1).lower()
        if key not in ("taskname", "status", "runid", "runtype"):
            raise RunFilterInvalid(f"$filter on {found.group(1)} is not supported")
        values[key] = found.group(2)
    status = values.get("status")
    if status is not None:
        matched = {s for s in STATUSES if s.lower() == status.lower()}
        if not matched:
            raise RunFilterInvalid(f"unknown run status {status!r}")
    return RunFilter(
        task_name=values.get("taskname"),
        statuses=None if status is None else frozenset(matched),
        run_id=values.get("runid"),
        run_type=values.get("runtype"),
    )


class Runs:
    def __init__(
        self,
        meta: Metadata,
        sources: BuildSources,
        tasks: Tasks,
        seal: Callable[[str, int], str],
        default_timeout: int,
        local_git: bool = False,
    ) -> None:
        self._meta = meta
        self._sources = sources
        self._tasks = tasks
        self._seal = seal
        self._default_timeout = default_timeout
        self._local_git = local_git
        self._queued: list[Callable[[], None]] = []

    def on_queued(self, listener: Callable[[], None]) -> None:
        """Call `listener` (from any thread) after each run this process queues: the
        runner of this process claims it at once instead of at its next poll."""
        self._queued.append(listener)

    def schedule(self, registry: RegistryRecord, body: dict[str, Any]) -> RunRecord:
        """Queue the run a `scheduleRun` body asks for; its context must be an upload of
        this registry's that is there, or a git repository (fetched when it runs)."""
        plan = parse_run_request(body, lambda text: self._seal(text, registry.id))
        self._check_source(registry, plan)
        self._check_task_file(registry, plan)
        return self._add(registry, plan)

    def schedule_task(
        self,
        registry: RegistryRecord,
        task_name: str,
        overrides: dict[str, Any],
        trigger: dict[str, Any] | None = None,
    ) -> RunRecord:
        """Queue a run of the registry's task (a `TaskRunRequest`, or `trigger`'s: a
        `timerTrigger`), its step's run request with `overrides`
        (`overrideTaskStepProperties`) applied."""
        if not isinstance(overrides, dict):
            raise RequestInvalid("overrideTaskStepProperties must be an object")
        body = self._tasks.run_request(registry, task_name, overrides)
        plan = parse_run_request(body, lambda text: self._seal(text, registry.id))
        self._check_source(registry, plan)
        self._check_task_file(registry, plan)
        run_type = AUTO_BUILD if plan.kind == DOCKER_BUILD else AUTO_RUN
        return self._add(registry, plan, task_name, run_type, trigger)

    def requeue(self, registry: RegistryRecord, run: RunRecord) -> RunRecord:
        """Queue `run`'s plan again, as a new run of the same kind (a task run's
        `forceUpdateTag` moved); its uploaded context must still be there."""
        plan = RunPlan.from_json(run.request, run.timeout_seconds)
        self._check_source(registry, plan)
        return self._add(registry, plan, run.task_name, run.run_type, run.trigger)

    def _check_source(self, registry: RegistryRecord, plan: RunPlan) -> None:
        if plan.source is not None:
            name = self._sources.parse(registry.id, plan.source)
            git = None if name is not None else parse_git_context(plan.source)
            if git is not None and git.local and not self._local_git:
                raise RunRequestUnsupported(
                    "a git repository on the server's disk is a context only where "
                    "[tasks] local_git_contexts allows it"
                )
            if git is not None:
                return
            if name is None:
                raise RunRequestUnsupported(
                    "the context (sourceLocation, or a task's contextPath) must be an upload "
                    "listBuildSourceUploadUrl gave or a git repository: contexts from "
                    "tarball URLs or oci:// are not supported yet"
                )
            if not self._sources.path(registry.id, name).is_file():
                raise RequestInvalid("the build context was not uploaded to the upload URL")

    def _check_task_file(self, registry: RegistryRecord, plan: RunPlan) -> None:
        """A task file that cannot run is refused now (400), not failed later: the one
        given, or the one in the uploaded context."""
        if plan.kind == DOCKER_BUILD:
            return
        text = plan.task_text
        if text is None:
            name = self._sources.parse(registry.id, plan.source or "")
            if name is None:  # a git repository's: read when the run has fetched it
                return
            assert plan.task_file is not None  # _check_source's
            text = _archived_file(self._sources.path(registry.id, name), plan.task_file)
            if text is None:
                raise RunRequestInvalid(f"the context has no task file {plan.task_file}")
        values = {v.name: "x1" if v.secret else v.value for v in plan.values}
        check_task_file(text, values, more_values=plan.values_file is not None)

    def _add(
        self,
        registry: RegistryRecord,
        plan: RunPlan,
        task_name: str | None = None,
        run_type: str | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> RunRecord:
        timeout = plan.timeout_seconds or self._default_timeout
        with self._meta.transaction() as tx:
            number = RunWrites(tx).add(
                registry.id,
                run_type or plan.run_type,
                plan.as_json(),
                plan.source,
                timeout,
                task_name,
                trigger,
            )
        for listener in self._queued:
            listener()
        found = find_run(self._meta, registry.id, number)
        assert found is not None
        return found

    def get(self, registry: RegistryRecord, run_id: str) -> RunRecord:
        return self.get_by_id(registry.id, run_id)

    def get_by_id(self, registry_id: int, run_id: str) -> RunRecord:
        number = run_number(run_id)
        found = None if number is None else find_run(self._meta, registry_id, number)
        if found is None:
            raise RunUnknown(f"The run '{run_id}' was not found in the registry.")
        return found

    def list(self, registry: RegistryRecord, selected: RunFilter, top: int) -> list[RunRecord]:
        """Newest first, at most `top`."""
        if selected.run_id is not None:
            try:
                found = [self.get(registry, selected.run_id)]
            except RunUnknown:
                return []
        else:
            found = runs(
                self._meta,
                registry.id,
                min(max(top, 1), MAX_TOP) if selected.run_type is None else MAX_TOP,
                selected.task_name,
                selected.statuses,
            )
        found = [
            r
            for r in found
            if (selected.run_type is None or r.run_type.lower() == selected.run_type.lower())
            and (selected.statuses is None or r.status in selected.statuses)
            and (selected.task_name is None or r.task_name == selected.task_name)
        ]
        return found[:top]

    def cancel(self, registry: RegistryRecord, run_id: str) -> RunRecord:
        """A queued or running run is canceled (its runner stops it within a second); a
        finished one stays as it is."""
        run = self.get(registry, run_id)
        with self._meta.transaction() as tx:
            RunWrites(tx).cancel(run.id)
        return self.get(registry, run_id)


def _archived_file(archive: Path, member: str) -> str | None:
    """A small file of an uploaded context (a tar.gz), or None if it has none."""
    wanted = PurePosixPath(member)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for entry in tar:
                if entry.isfile() and PurePosixPath(entry.name.removeprefix("./")) == wanted:
                    if entry.size > MAX_TASK_FILE_BYTES:
                        raise RunRequestInvalid(f"the task file {member} is larger than 1 MiB")
                    data = tar.extractfile(entry)
                    return None if data is None else data.read().decode(errors="replace")
    except (tarfile.TarError, OSError):
        raise RunRequestInvalid("the uploaded context is no readable tar.gz") from None
    return None
