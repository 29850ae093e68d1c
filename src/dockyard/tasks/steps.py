"""Runs a task file (`az acr run -f`, `--cmd`, a task's FileTask or EncodedTask step):
reads it with the run's variables and values, then runs its steps as their `when`
graph allows, those whose dependencies are done at once (at most `MAX_PARALLEL_STEPS`),
each with its start delay, timeout, retries, repeats and `ignoreErrors`, its output in
the run's log between ACR's step lines. A step is one of three: `build` (buildah, bases
pulled first unless an earlier step made them), `push` (to this registry only, with the
run's token) and `cmd` (a container of an image, as `docker run` would, the run's context
mounted at /workspace). The tools and their containment are the runner's (`runner.py`,
`builder.py`); this module never decides who may push where."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dockyard.metadata.records import RegistryRecord
from dockyard.tasks.builder import base_images, full_name
from dockyard.tasks.requests import RunPlan, RunRequestInvalid
from dockyard.tasks.runner import RunStopped, StepFailed, _output
from dockyard.tasks.task_files import BUILD, CMD, PUSH, WORKSPACE, Step, TaskFile, parse_task_file

if TYPE_CHECKING:
    from dockyard.tasks.runner import _Execution

MAX_PARALLEL_STEPS = 4  # steps of one run at once: builds are heavy on small machines


class TaskFileRun:
    """One run of a task file, on `_Execution`'s tools and log."""

    def __init__(
        self,
        execution: _Execution,
        registry: RegistryRecord,
        plan: RunPlan,
        variables: dict[str, str],
    ) -> None:
        self._execution = execution
        self._registry = registry
        self._plan = plan
        # The source commit and branch are empty but in a run of a git context.
        self._variables = {"Commit": "", "Branch": "", **variables}
        self._workspace = execution._workspace
        self._run_id = variables["ID"]
        self._outputs: list[dict[str, Any]] = []
        self._detached: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(MAX_PARALLEL_STEPS)
        self._pulling: dict[str, asyncio.Lock] = {}
        # The Dockerfiles built so far, whose bases a task's base image trigger follows.
        self._dockerfiles: list[str] = []
        self._recording = asyncio.Lock()

    async def perform(self) -> list[dict[str, Any]]:
        task = await self._task_file()
        await asyncio.to_thread(self._write_volumes, task)
        try:
            await self._run_graph(task)
        finally:
            for detached in self._detached:
                detached.cancel()
            await asyncio.gather(*self._detached, return_exceptions=True)
        return self._outputs

    async def _task_file(self) -> TaskFile:
        plan = self._plan
        values: dict[str, str] = {}
        if plan.values_file:
            values.update(self._read_values(self._context_file(plan.values_file, "values file")))
        for value in plan.values:
            values[value.name] = (
                self._execution._runner.open_secret(value.value, self._registry.id)
                if value.secret
                else value.value
            )
        if plan.task_text is not None:
            text = plan.task_text
        else:
            path = self._context_file(plan.task_file or "acb.yaml", "task file")
            text = path.read_text(errors="replace")
        try:
            return parse_task_file(text, self._variables, values)
        except RunRequestInvalid as exc:
            message = exc.message
            for value in plan.values:  # a secret value filled in must not show
                if value.secret and values.get(value.name):
                    message = message.replace(values[value.name], "***")
            raise StepFailed(f"the task file cannot be run: {message}") from None

    def _context_file(self, relative: str, what: str) -> Path:
        context = self._workspace.context.resolve()
        path = (context / relative).resolve()
        if not path.is_relative_to(context) or not path.is_file():
            raise StepFailed(f"the context has no {what} at {relative!r}")
        return path

    @staticmethod
    def _read_values(path: Path) -> dict[str, str]:
        try:
            data = yaml.safe_load(path.read_text(errors="replace"))
        except yaml.YAMLError:
            raise StepFailed("the values file is not YAML") from None
        if not isinstance(data, dict):
            raise StepFailed("the values file must be a YAML map")
        return {str(k): str(v) for k, v in data.items()}

    def _write_volumes(self, task: TaskFile) -> None:
        for name, files in task.volumes.items():
            directory = self._volume(name)
            directory.mkdir(parents=True, exist_ok=True)
            for file_name, content in files.items():
                (directory / file_name).write_bytes(content)

    def _volume(self, name: str) -> Path:
        return self._workspace.root / "volumes" / name

    async def _run_graph(self, task: TaskFile) -> None:
        """Start each step once its dependencies are done; the first failure (of a step
        that does not ignore errors) stops the others and is the run's."""
        done: set[str] = set()
        running: dict[asyncio.Task[None], Step] = {}
        try:
            while len(done) < len(task.steps):
                for step in task.ready(done):
                    if step not in running.values():
                        running[asyncio.create_task(self._run_step(step))] = step
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for job in finished:
                    step = running.pop(job)
                    job.result()  # a step's failure ends the run here
                    done.add(step.id)
        finally:
            for job in running:
                job.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _run_step(self, step: Step) -> None:
        if step.start_delay:
            await asyncio.sleep(step.start_delay)
        async with self._slots:
            self._execution.note(
                f"Executing step ID: {step.id}. Timeout(sec): {step.timeout}, "
                f"Working directory: '{step.working_directory or ''}', Network: ''"
            )
            started = time.monotonic()
            try:
                await self._attempts(step)
            except StepFailed as exc:
                elapsed = time.monotonic() - started
                if not step.ignore_errors:
                    self._execution.note(
                        f"Step ID: {step.id} marked as failed (elapsed time in seconds: "
                        f"{elapsed:.6f})"
                    )
                    raise StepFailed(f"failed to run step ID: {step.id}: {exc}") from None
                self._execution.note(f"Step ID: {step.id} failed, its errors are ignored: {exc}")
                return
            elapsed = time.monotonic() - started
            self._execution.note(
                f"Step ID: {step.id} marked as successful (elapsed time in seconds: {elapsed:.6f})"
            )

    async def _attempts(self, step: Step) -> None:
        """The step, repeated `repeat` times more, within its timeout; tried again
        `retries` times after `retry_delay` when it fails (not when it times out)."""
        for attempt in range(step.retries + 1):
            try:
                async with asyncio.timeout(step.timeout):
                    for round_ in range(step.repeat + 1):
                        await self._once(step, f"{attempt}-{round_}")
                return
            except TimeoutError:
                raise StepFailed(f"the step timed out after {step.timeout}s") from None
            except StepFailed as exc:
                if attempt == step.retries:
                    raise
                self._execution.note(
                    f"Step ID: {step.id} failed ({exc}); retrying in {step.retry_delay}s"
                )
                await asyncio.sleep(step.retry_delay)

    async def _once(self, step: Step, attempt: str) -> None:
        if step.kind == BUILD:
            await self._build(step)
        elif step.kind == PUSH:
            for image in step.images:
                output = _output(self._registry, image)
                await self._ensure_tagged(image, output.reference)
                self._outputs.append(await self._execution._push(self._registry, output))
        elif step.kind == CMD:
            await self._cmd(step, attempt)

    async def _local(self, image: str) -> dict[str, Any] | None:
        """What buildah knows of `image` if the run's storage has it (built or pulled by
        an earlier step), else None."""
        found = await self._execution._capture(self._workspace.image_config(image))
        if not found:
            return None
        data = json.loads(found)
        return data if isinstance(data, dict) else None

    async def _image(self, image: str, pull: bool) -> tuple[str, dict[str, Any]]:
        """`image` in the run's storage, pulled unless an earlier step built or pulled it
        (or `pull`: always), once even when parallel steps ask for it: its name there and
        what buildah knows of it."""
        async with self._pulling.setdefault(full_name(image), asyncio.Lock()):
            found = None if pull else await self._local(image)
            if found is not None:
                return image, found
            name = full_name(image)
            await self._execution._pull(self._registry, name)
            return name, await self._local(name) or {}

    async def _ensure_tagged(self, image: str, reference: str) -> None:
        """A push names `app:1` for this registry's `app:1`; a build may have tagged it
        so (buildah keeps it as `localhost/app:1`): it gets the full name too."""
        if await self._local(reference) is None and await self._local(image) is not None:
            await self._execution._step(
                self._workspace.tag(image, reference), f"tagging {image} failed"
            )

    async def _build(self, step: Step) -> None:
        options = step.build
        assert options is not None
        root = self._workspace.context.resolve()
        context = (root / options.context).resolve()
        dockerfile = (context / options.dockerfile).resolve()
        if not context.is_relative_to(root) or not context.is_dir():
            raise StepFailed(f"the context has no directory {options.context!r}")
        if not dockerfile.is_relative_to(root) or not dockerfile.is_file():
            raise StepFailed(f"the context has no Dockerfile at {options.dockerfile!r}")
        text = dockerfile.read_text(errors="replace")
        async with self._recording:
            self._dockerfiles.append(text)
            await asyncio.to_thread(
                self._execution._runner.record_base_images,
                self._registry,
                self._execution._run,
                *self._dockerfiles,
            )
        for base in base_images(text):
            await self._image(base, pull=False)
        tags = list(options.tags) or [f"localhost/dockyard-run/{self._run_id}:{step.id}"]
        await self._execution._step(
            self._workspace.build(
                dockerfile,
                tags,
                list(options.arguments),
                options.target,
                options.no_cache,
                context,
            ),
            "the build failed",
        )

    async def _cmd(self, step: Step, attempt: str) -> None:
        """`IMAGE [ARGS]` as `docker run` would: the image's entrypoint (or the step's
        `entryPoint`) with the arguments given, or the image's own command."""
        if not step.command:
            raise StepFailed("the cmd names no image")
        image, arguments = step.command[0], list(step.command[1:])
        name, config = await self._image(image, step.pull)
        oci = (config.get("OCIv1") or {}).get("config") or {}
        if step.entry_point is not None:
            entry, default = shlex.split(step.entry_point), []
        else:
            entry, default = oci.get("Entrypoint") or [], oci.get("Cmd") or []
        argv = [*entry, *(arguments or default)]
        if not argv:
            raise StepFailed(f"{image} has no command: give one after the image")
        container = f"dockyard-{self._run_id}-{step.id}-{attempt}"
        if not await self._execution._capture(self._workspace.container(name, container)):
            raise StepFailed(f"cannot start a container of {image}")
        self._execution.note(f"Launching container with name: {step.id}")
        command = self._workspace.run(container, argv, self._run_options(step))
        if step.detach:
            self._detached.append(asyncio.create_task(self._detach(command, image)))
            return
        await self._execution._step(command, f"the container of {image} exited with an error")
        self._execution.note(f"Successfully executed container: {step.id}")

    async def _detach(self, command: list[str], image: str) -> None:
        """A detached container runs beside the steps after it, until the run ends."""
        try:
            await self._execution._step(command, f"the container of {image} failed")
        except (StepFailed, RunStopped) as exc:
            self._execution.note(f"A detached container stopped: {exc or 'canceled'}")

    def _run_options(self, step: Step) -> list[str]:
        options = ["--volume", f"{self._workspace.context}:{WORKSPACE}"]
        for variable in step.env:
            options += ["--env", variable]
        if step.working_directory:
            options += ["--workingdir", step.working_directory]
        if step.user:
            options += ["--user", step.user]
        for volume, path in step.mounts:
            options += ["--volume", f"{self._volume(volume)}:{path}:ro"]
        return options
