"""Tasks' base image triggers. A task's build records what its Dockerfile starts from
(`BaseImageTracker`, called by the runner before it pulls): the final stage's base as
RunTime, the other stages' as BuildTime, each with the digest its tag names then. When
the tag moves, `BaseImageTriggers` queues a run of the task, with `imageUpdateTrigger`
naming the image: at once for a push to one of this server's registries (an outbox
consumer of `TagMoved`), by polling for an image elsewhere (every
`[tasks] base_image_poll_seconds`; the first look only notes the digest). Only if the
task is Enabled and its base image trigger too; `baseImageTriggerType` Runtime (az's
default) follows the RunTime image only, All every one. A tag that moves to the digest
it named starts nothing, nor does a push by a run of the task itself (a task that
patches the image it builds on). Several workers may see one change: the dependency's row is
claimed by moving its digest on, so one of them queues the run."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import defaultdict
from datetime import timedelta

from dockyard.common.clock import Clock
from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.core.registries import Registries
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.task_base_images import (
    BaseImage,
    BaseImageWrites,
    Dependency,
    due_polls,
    tag_dependents,
)
from dockyard.metadata.task_definitions import find_task
from dockyard.metadata.tasks import RunRecord, find_run
from dockyard.tasks.builder import full_name, has_build_argument, stage_froms
from dockyard.tasks.requests import split_image
from dockyard.tasks.runs import Runs

RUN_TIME, BUILD_TIME = "RunTime", "BuildTime"
_RUN_SUBJECT = re.compile(r"run:([^/]+)/ca([0-9]{1,12})")
CHECK_SECONDS = 30.0  # how often the poller looks for images due (each at its interval)

log = logging.getLogger(__name__)


def stage_bases(dockerfile: str) -> list[tuple[str, str]]:
    """(kind, image) for each image the Dockerfile's stages start from: the final
    stage's (followed through the earlier stages it names) RunTime, the others
    BuildTime; `scratch`, digests and names built from arguments left out (no tag of
    them can move, or none is known)."""
    stages: dict[str, str] = {}  # a stage's name -> the image it starts from
    froms: list[str] = []
    for named, name in stage_froms(dockerfile):
        image = stages.get(named.lower(), named)
        if name is not None:
            stages[name] = image
        froms.append(image)
    kinds: dict[str, str] = {}
    for index, image in enumerate(froms):
        if image == "scratch" or "@" in image or has_build_argument(image):
            continue
        if index == len(froms) - 1:
            kinds[image] = RUN_TIME
        else:
            kinds.setdefault(image, BUILD_TIME)
    return [(kind, image) for image, kind in kinds.items()]


class BaseImageTracker:
    """Records a task's base images as its build finds them."""

    def __init__(self, meta: Metadata, registries: Registries) -> None:
        self._meta = meta
        self._registries = registries

    def record(self, registry: RegistryRecord, task_name: str, *dockerfiles: str) -> None:
        """The task's base images are those of `dockerfiles` (a task file's builds: an
        image that is some build's RunTime base is RunTime)."""
        task = find_task(self._meta, registry.id, task_name)
        if task is None:
            return
        kinds: dict[str, str] = {}
        for dockerfile in dockerfiles:
            for kind, name in stage_bases(dockerfile):
                if kinds.get(name) != RUN_TIME:
                    kinds[name] = kind
        images = []
        for name, kind in kinds.items():
            host, repository, tag = split_image(full_name(name))
            assert host is not None  # full_name names one
            local = self._registries.serving(host)
            digest = None
            if local is not None:
                manifest = self._meta.manifest_by_tag(local.id, repository, tag)
                digest = None if manifest is None else manifest.digest
            registry_id = None if local is None else local.id
            images.append(BaseImage(kind, registry_id, host, repository, tag, digest))
        with self._meta.transaction() as tx:
            BaseImageWrites(tx).replace(task.id, images)


class BaseImageTriggers:
    def __init__(
        self,
        meta: Metadata,
        runs: Runs,
        clock: Clock,
        poll_seconds: float,
        insecure_hosts: list[str],
    ) -> None:
        self._meta = meta
        self._runs = runs
        self._clock = clock
        self.poll_seconds = poll_seconds
        self._insecure = {host.lower() for host in insecure_hosts}

    def tag_moved(
        self,
        registry_id: int,
        repository: str,
        tag: str,
        digest: str,
        pushed_by: str | None = None,
    ) -> list[RunRecord]:
        """A push moved `repository:tag` of this server's registry to `digest`: the runs
        of the tasks built on it, queued. `pushed_by` is who pushed: a task's own run
        pushing the image it builds on starts no run of that task (it would start
        itself for ever)."""
        queued = []
        for dependency in tag_dependents(self._meta, registry_id, repository, tag):
            run = self._moved(dependency, digest, pushed_by)
            if run is not None:
                queued.append(run)
        return queued

    def _moved(
        self, dependency: Dependency, digest: str, pushed_by: str | None = None
    ) -> RunRecord | None:
        """Claim the change of `dependency` to `digest`, then queue its run if its task
        wants one. None when nothing changed, another worker claimed it, or the task or
        its trigger is off (the digest moves on all the same)."""
        if dependency.image.digest == digest:
            return None
        with self._meta.transaction() as tx:
            if not BaseImageWrites(tx).move_on(dependency.id, dependency.image.digest, digest):
                return None
        if dependency.image.digest is None and dependency.image.registry_id is None:
            return None  # the first look at an image elsewhere: nothing to compare with
        if self._own_push(dependency, pushed_by):
            return None
        return self._start(dependency, digest)

    def _own_push(self, dependency: Dependency, pushed_by: str | None) -> bool:
        """Whether `pushed_by` is a run of the dependency's task (its push token's
        subject is `run:<registry>/<run id>`)."""
        found = _RUN_SUBJECT.fullmatch(pushed_by or "")
        if found is None:
            return False
        registry = next(
            (r for r in self._meta.registries() if r.id == dependency.task_registry_id), None
        )
        if registry is None or registry.name.lower() != found.group(1).lower():
            return False
        run = find_run(self._meta, registry.id, int(found.group(2)))
        return run is not None and run.task_name == dependency.task_name

    def _start(self, dependency: Dependency, digest: str) -> RunRecord | None:
        registry = next(
            (r for r in self._meta.registries() if r.id == dependency.task_registry_id), None
        )
        task = find_task(self._meta, dependency.task_registry_id, dependency.task_name)
        if registry is None or task is None:
            return None
        properties = task.properties
        trigger = (properties.get("trigger") or {}).get("baseImageTrigger") or {}
        wanted = trigger.get("status") == "Enabled" and (
            trigger.get("baseImageTriggerType") == "All" or dependency.image.kind == RUN_TIME
        )
        if properties.get("status") != "Enabled" or not wanted:
            return None
        image = dependency.image
        update = {
            "imageUpdateTrigger": {
                "id": str(uuid.uuid4()),
                "timestamp": self._clock().isoformat().replace("+00:00", "Z"),
                "images": [
                    {
                        "registry": image.host,
                        "repository": image.repository,
                        "tag": image.tag,
                        "digest": digest,
                    }
                ],
            }
        }
        try:
            return self._runs.schedule_task(registry, task.name, {}, update)
        except RequestInvalid as exc:
            log.warning(
                "base image trigger queued no run",
                extra={"fields": {"task": task.name, "reason": exc.message}},
            )
            return None

    async def poll_due(self) -> list[RunRecord]:
        """Look up the base images elsewhere due a look; the runs their changes queued."""
        before = self._clock() - timedelta(seconds=self.poll_seconds)
        due = await asyncio.to_thread(due_polls, self._meta, before)
        by_host: dict[str, dict[tuple[str, str], list[Dependency]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for dependency in due:
            image = dependency.image
            by_host[image.host][(image.repository, image.tag)].append(dependency)
        queued = []
        for host, images in by_host.items():
            digests = await self._digests(host, list(images))
            for key, dependencies in images.items():
                digest = digests.get(key)
                for dependency in dependencies:
                    if digest is None or digest == dependency.image.digest:
                        await asyncio.to_thread(self._checked, dependency.id)
                        continue
                    run = await asyncio.to_thread(self._moved, dependency, digest)
                    if run is not None:
                        queued.append(run)
        return queued

    async def _digests(
        self, host: str, images: list[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """What each `(repository, tag)` of `host` names now; one that cannot be read is
        left out (and logged), to be looked at again next time."""
        from dockyard.mirroring.upstream import Upstream

        found = {}
        async with Upstream(host, None, host.lower() in self._insecure) as upstream:
            for repository, tag in images:
                try:
                    found[(repository, tag)] = (await upstream.manifest(repository, tag)).digest
                except RegistryError as exc:
                    log.warning(
                        "base image not looked up",
                        extra={
                            "fields": {"image": f"{host}/{repository}:{tag}", "reason": str(exc)}
                        },
                    )
        return found

    def _checked(self, dependency_id: int) -> None:
        with self._meta.transaction() as tx:
            BaseImageWrites(tx).checked([dependency_id])

    async def run(self) -> None:
        """`poll_due` every `CHECK_SECONDS` (or the poll interval, if shorter) until
        cancelled."""
        while True:
            try:
                await self.poll_due()
            except Exception:
                log.exception("base image polling failed")
            await asyncio.sleep(min(CHECK_SECONDS, self.poll_seconds))
