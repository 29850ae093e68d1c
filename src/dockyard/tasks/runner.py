"""Executes queued runs, in the background work of any process that runs it (a server
with in-process workers, or `dockyard worker`): claims a queued run (one claim wins),
at most `[tasks] concurrency` at once per process, and for each: unpacks its context in
a directory of its own (or fetches its git repository), records a task's base images
for its base image trigger, pulls its bases, builds with buildah, pushes what it built to
this registry, writes the log, records the outcome, removes the directory and the
uploaded context.

The tools never see the admin password: every pull and push carries an access token
minted for this run (the token service's own signer, its usual short lifetime), for the
run's base repositories (pull) or its output repositories (pull, push) only, fresh for
each step. A cancel (seen within `POLL_SECONDS`) or the run's timeout kills the step's
whole process group. A run whose process died stops beating and ends in Error after
`ABANDONED_AFTER`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from dockyard.auth.secret_box import SecretBox
from dockyard.auth.tokens import TokenSigner
from dockyard.common.clock import Clock
from dockyard.core.registries import Registries
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.tasks import (
    CANCELED,
    ERROR,
    FAILED,
    SUCCEEDED,
    TIMEOUT,
    RunRecord,
    RunWrites,
    queued,
    status_of,
)
from dockyard.tasks.base_image_triggers import BaseImageTracker
from dockyard.tasks.builder import Tls, Workspace
from dockyard.tasks.git_contexts import (
    GitContext,
    GitFetchFailed,
    fetch,
    parse_git_context,
    without_credentials,
)
from dockyard.tasks.platform_builds import BuildRequest, PlatformBuilds, PlatformUnbuildable
from dockyard.tasks.platforms import Platform, host_platform, platforms_of
from dockyard.tasks.registry_network import step_network
from dockyard.tasks.requests import DOCKER_BUILD, RunPlan, render, split_image
from dockyard.tasks.run_logs import RunLogs, crlf
from dockyard.tasks.runs import Runs
from dockyard.tasks.sources import BuildSources

POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 10.0
ABANDONED_AFTER = timedelta(seconds=60)
UNUSED_SOURCE_SECONDS = 24 * 3600
MAX_LOG_BYTES = 64 * 1024 * 1024
_CHUNK = 64 * 1024
_TOOLS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

log = logging.getLogger(__name__)


class StepFailed(Exception):
    """A step of the run failed; the message is the run's error message."""


class RunStopped(Exception):
    """The run was canceled while a step ran."""


@dataclass(frozen=True)
class RunnerConfig:
    work_root: Path
    concurrency: int
    driver: str
    tls: Tls
    network: str = "registry"  # [tasks] step_network
    host_network_tasks: frozenset[str] = frozenset()  # REGISTRY/TASK


class Runner:
    def __init__(
        self,
        meta: Metadata,
        registries: Registries,
        sources: BuildSources,
        logs: RunLogs,
        tokens: TokenSigner,
        box: SecretBox,
        clock: Clock,
        config: RunnerConfig,
        base_images: BaseImageTracker | None = None,
    ) -> None:
        self._meta = meta
        self._registries = registries
        self._sources = sources
        self._logs = logs
        self._tokens = tokens
        self._box = box
        self._clock = clock
        self._config = config
        self._base_images = base_images
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._running: dict[int, asyncio.Task[None]] = {}
        self._bell = asyncio.Event()  # `run`'s: set to look for queued runs at once

    async def run(self, runs: Runs | None = None) -> None:
        """Claim and execute queued runs until cancelled: every `POLL_SECONDS`, and at
        once when `runs` (this process's) queues one or a run of this runner ends."""
        loop = asyncio.get_running_loop()
        self._bell = asyncio.Event()
        if runs is not None:
            runs.on_queued(lambda: loop.call_soon_threadsafe(self._bell.set))
        last_beat = 0.0
        try:
            while True:
                try:
                    await self.claim_due()
                    if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                        await asyncio.to_thread(self._beat)
                        last_beat = time.monotonic()
                except Exception:
                    log.exception("task runner round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._bell.wait(), POLL_SECONDS)
                self._bell.clear()
        finally:
            for task in self._running.values():
                task.cancel()

    async def finished(self) -> None:
        """Wait until the runs this runner started have ended."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def claim_due(self) -> None:
        free = self._config.concurrency - len(self._running)
        if free <= 0:
            return
        for run in await asyncio.to_thread(queued, self._meta, free):
            if await asyncio.to_thread(self._claim, run.id):
                task = asyncio.create_task(self.execute(run))
                self._running[run.id] = task
                task.add_done_callback(lambda _, key=run.id: self._running.pop(key, None))

    def _claim(self, run_key: int) -> bool:
        with self._meta.transaction() as tx:
            return RunWrites(tx).claim(run_key, self.name)

    def _beat(self) -> None:
        with self._meta.transaction() as tx:
            writes = RunWrites(tx)
            writes.beat(list(self._running))
            writes.abandon_running(
                tx.now - ABANDONED_AFTER,
                "the process running this run stopped before it finished",
            )
        # An upload a day old is dropped: its URL expired long ago, and a run takes its
        # context when it starts, seconds after it was queued.
        self._sources.expire(time.time() - UNUSED_SOURCE_SECONDS)

    async def execute(self, run: RunRecord) -> None:
        """One claimed run, to its end."""
        registry = next((r for r in self._registries.all() if r.id == run.registry_id), None)
        log_path = self._logs.start(run.registry_id, run.number)
        root = self._config.work_root / f"{run.registry_id}-{run.number}"
        login_server = None if registry is None else registry.login_server
        mode = self._config.network
        if registry is not None and f"{registry.name}/{run.task_name}" in (
            self._config.host_network_tasks
        ):
            mode = "host"
        network = step_network(mode, root, login_server, self._config.tls.verify)
        workspace = Workspace(root, self._config.driver, network.prefix, network.hosts)
        execution = _Execution(self, run, registry, log_path, workspace)
        try:
            await self._perform(run, execution, network.relay)
        finally:
            # After the outcome is recorded (a vfs storage takes a while to remove: the
            # run ended when its last step did), and also when the run was interrupted.
            await asyncio.to_thread(self._clean, run, workspace)
            self._bell.set()  # a slot is free

    async def _perform(
        self,
        run: RunRecord,
        execution: _Execution,
        relay: contextlib.AbstractAsyncContextManager[None],
    ) -> None:
        status, outputs, error = ERROR, [], None
        started = time.monotonic()
        try:
            async with asyncio.timeout(run.timeout_seconds), relay:
                outputs = await execution.perform()
            status = SUCCEEDED
        except TimeoutError:
            status, error = TIMEOUT, f"the run timed out after {run.timeout_seconds}s"
        except RunStopped:
            status, error = CANCELED, "the run was canceled"
        except StepFailed as exc:
            status, error = FAILED, str(exc)
        except Exception as exc:
            log.exception("run failed", extra={"fields": {"run": run.run_id}})
            status, error = ERROR, f"internal error: {type(exc).__name__}"
        finally:
            await execution.stop()
        seconds = int(time.monotonic() - started)
        outcome = {
            SUCCEEDED: "was successful",
            FAILED: "failed",
            CANCELED: "was canceled",
            TIMEOUT: "timed out",
        }.get(status, "failed with an internal error")
        if error:
            execution.write(error)
        execution.write(f"Run ID: {run.run_id} {outcome} after {_duration(seconds)}")
        execution.close()
        await asyncio.to_thread(self._finish, run.id, status, outputs, error)
        try:
            await asyncio.to_thread(self._logs.keep, run.id, run.registry_id, run.number)
        except Exception:
            log.exception("keeping the run's log failed", extra={"fields": {"run": run.run_id}})

    def _finish(
        self, run_key: int, status: str, outputs: list[dict[str, Any]], error: str | None
    ) -> None:
        with self._meta.transaction() as tx:
            RunWrites(tx).finish(run_key, status, outputs, error)

    def _clean(self, run: RunRecord, workspace: Workspace) -> None:
        """The run's storage and context go; so does its upload."""
        if workspace.root.exists():
            _unmount_below(workspace.root)
            shutil.rmtree(workspace.root, ignore_errors=True)
        if run.source is not None:
            name = self._sources.parse(run.registry_id, run.source)
            if name is not None:
                self._sources.remove(run.registry_id, name)

    # What `_Execution` asks of the runner.

    def token(self, registry: RegistryRecord, run: RunRecord, access: dict[str, str]) -> str:
        """An access token for this run: `access` maps repositories to their actions."""
        token, _ = self._tokens.access_token(
            registry.login_server,
            f"run:{registry.name}/{run.run_id}",
            [
                {"type": "repository", "name": name, "actions": actions.split(",")}
                for name, actions in access.items()
            ],
        )
        return token

    def record_base_images(
        self, registry: RegistryRecord, run: RunRecord, *dockerfiles: str
    ) -> None:
        """What a task's run builds on (all its builds so far), for its base image
        trigger."""
        if self._base_images is not None and run.task_name is not None:
            self._base_images.record(registry, run.task_name, *dockerfiles)

    def open_secret(self, sealed: str, registry_id: int) -> str:
        return self._box.open(sealed, registry_id)

    def canceled(self, run_key: int) -> bool:
        return status_of(self._meta, run_key) == CANCELED

    def source_path(self, run: RunRecord) -> Path | None:
        name = None if run.source is None else self._sources.parse(run.registry_id, run.source)
        return None if name is None else self._sources.path(run.registry_id, name)

    @property
    def config(self) -> RunnerConfig:
        return self._config

    def now_text(self) -> str:
        return self._clock().strftime("%Y/%m/%d %H:%M:%S")


class _Execution:
    """The steps of one run, writing its log as they go."""

    def __init__(
        self,
        runner: Runner,
        run: RunRecord,
        registry: RegistryRecord | None,
        log_path: Path,
        workspace: Workspace,
    ) -> None:
        self._runner = runner
        self._run = run
        self._registry = registry
        self._log = log_path.open("ab", buffering=0)
        self._written = 0
        self._workspace = workspace
        self._processes: set[asyncio.subprocess.Process] = set()

    def write(self, text: str) -> None:
        self._log.write(crlf(text))

    def note(self, text: str) -> None:
        self.write(f"{self._runner.now_text()} {text}")

    async def stop(self) -> None:
        """Kill the steps running (a cancel or a timeout interrupted them)."""
        for process in list(self._processes):
            if process.returncode is None:
                _kill(process)
                await process.wait()

    def close(self) -> None:
        self._log.close()

    async def perform(self) -> list[dict[str, Any]]:
        registry, run = self._registry, self._run
        if registry is None:
            raise StepFailed("the run's registry is gone")
        plan = RunPlan.from_json(run.request, run.timeout_seconds)
        workspace = self._workspace
        await asyncio.to_thread(workspace.prepare)
        if plan.kind != DOCKER_BUILD:
            from dockyard.tasks.steps import TaskFileRun  # it builds on this module

            native = host_platform()
            if platforms_of(plan.platform) != [native]:
                raise StepFailed(f"a task file runs on this server's platform only ({native.text})")
            source_ref = {} if plan.source is None else await self._unpack_context(plan)
            variables = _variables(registry, run, self._runner.now_text(), **source_ref)
            return await TaskFileRun(self, registry, plan, variables).perform()
        source_ref = await self._unpack_context(plan)
        variables = _variables(registry, run, self._runner.now_text(), **source_ref)
        dockerfile = (workspace.context / plan.dockerfile).resolve()
        if not dockerfile.is_relative_to(workspace.context.resolve()) or not dockerfile.is_file():
            raise StepFailed(f"the context has no Dockerfile at {plan.dockerfile!r}")
        outputs = [_output(registry, render(n, variables)) for n in plan.image_names]
        text = dockerfile.read_text(errors="replace")
        await asyncio.to_thread(self._runner.record_base_images, registry, run, text)
        arguments, secrets = [], {}
        for argument in plan.arguments:
            if argument.secret:
                secrets[argument.name] = self._runner.open_secret(argument.value, registry.id)
                arguments.append(argument.name)
            else:
                arguments.append(f"{argument.name}={argument.value}")
        tags = [o.reference for o in outputs] or [f"localhost/dockyard-run/{run.run_id}:build"]
        request = BuildRequest(dockerfile, tags, arguments, plan.target, plan.no_cache, secrets)
        builds = PlatformBuilds(self._step, self.note, self._pull_platform, self._capture)
        try:
            built = await builds.build(workspace, platforms_of(plan.platform), request)
        except PlatformUnbuildable as exc:
            raise StepFailed(str(exc)) from None
        if not plan.push:
            return []
        if len(built) > 1:
            digests = await builds.push_index(
                workspace,
                built,
                tags[0],
                [o.reference for o in outputs],
                lambda reference: self._runner.token(
                    registry, run, {split_image(reference)[1]: "pull,push"}
                ),
                self._runner.config.tls,
            )
            for output, digest in zip(outputs, digests, strict=True):
                self.note(f"Successfully pushed image index: {output.reference}@{digest}")
            return [_pushed(registry, o, d) for o, d in zip(outputs, digests, strict=True)]
        built_in = next(iter(built.values()))
        return [await self._push(registry, output, built_in) for output in outputs]

    async def _fetch_git(self, plan: RunPlan, git: GitContext) -> dict[str, str]:
        """The git context into the workspace, at the commit the run's source trigger
        names (else the context's branch head); its commit and branch."""
        trigger = self._run.trigger.get("sourceTrigger") or {}
        token = (
            None
            if plan.source_token is None
            else self._runner.open_secret(plan.source_token, self._run.registry_id)
        )
        self.note(f"Fetching the build context from {without_credentials(git.url)}...")
        try:
            commit = await asyncio.to_thread(
                fetch,
                git,
                token,
                trigger.get("commitId"),
                self._workspace.context,
                self._workspace.root / "git",
            )
        except GitFetchFailed as exc:
            raise StepFailed(str(exc)) from None
        self.note(f"Commit: {commit}")
        return {"commit": commit, "branch": trigger.get("branchName") or git.branch or ""}

    async def _unpack_context(self, plan: RunPlan) -> dict[str, str]:
        """The run's context into its workspace: its git repository fetched, or its
        upload unpacked; a git context's commit and branch (the run variables')."""
        git = None if plan.source is None else parse_git_context(plan.source)
        if git is not None:
            return await self._fetch_git(plan, git)
        source = self._runner.source_path(self._run)
        if source is None or not source.is_file():
            raise StepFailed("the build context is gone (was it uploaded on another node?)")
        self.note("Extracting the build context...")
        await asyncio.to_thread(_unpack, source, self._workspace.context)
        return {}

    async def _push(
        self, registry: RegistryRecord, output: _Output, workspace: Workspace | None = None
    ) -> dict[str, Any]:
        """`output` (built in the run's storage, or `workspace`'s) to this registry, with
        a token for its repository only; what the run's `outputImages` lists of it."""
        workspace = workspace or self._workspace
        self.note(f"Pushing image: {output.reference}...")
        digest_file = workspace.root / f"digest-{output.repository.replace('/', '_')}"
        token = self._runner.token(registry, self._run, {output.repository: "pull,push"})
        await self._step(
            workspace.push(output.reference, token, self._runner.config.tls, digest_file),
            f"pushing {output.reference} failed",
        )
        digest = digest_file.read_text().strip()
        self.note(f"Successfully pushed image: {output.reference}@{digest}")
        return _pushed(registry, output, digest)

    async def _capture(self, command: list[str]) -> str:
        """A short command's output (a query, not a step: nothing goes to the log)."""
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=self._workspace.environment(_TOOLS_PATH),
            cwd=self._workspace.root,
        )
        out, _ = await process.communicate()
        return out.decode(errors="replace").strip() if process.returncode == 0 else ""

    async def _pull(
        self,
        registry: RegistryRecord,
        name: str,
        workspace: Workspace | None = None,
        platform: Platform | None = None,
    ) -> None:
        """`name` (a full reference) into the run's storage (or `workspace`'s), for
        `platform` if given: with a pull token for this run when it is on this registry,
        anonymously elsewhere."""
        host, repository, _ = split_image(name)
        own = host is not None and host.lower() == registry.login_server.lower()
        token = (
            self._runner.token(registry, self._run, {repository.split("@")[0]: "pull"})
            if own
            else None
        )
        self.note(f"Pulling image {name}" + (f" for {platform.text}..." if platform else "..."))
        await self._step(
            (workspace or self._workspace).pull(
                name,
                token,
                self._runner.config.tls if own else None,
                platform.skopeo_options() if platform else None,
            ),
            f"pulling {name} failed",
        )

    async def _pull_platform(self, workspace: Workspace, name: str, platform: Platform) -> None:
        """A base of a build, for `platform`, into that platform's storage."""
        assert self._registry is not None
        await self._pull(self._registry, name, workspace, platform)

    async def _step(
        self, command: list[str], failure: str, extra_env: dict[str, str] | None = None
    ) -> None:
        """One tool, its output into the log line by line; `failure` if it fails."""
        if await asyncio.to_thread(self._runner.canceled, self._run.id):
            raise RunStopped
        env = {**self._workspace.environment(_TOOLS_PATH), **(extra_env or {})}
        try:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=self._workspace.root,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise StepFailed(
                f"{command[0]} is not installed on the server (make install installs it)"
            ) from None
        self._processes.add(process)
        watcher = asyncio.create_task(self._watch_cancel(process))
        try:
            assert process.stdout is not None
            await self._copy_output(process.stdout)
            code = await process.wait()
        finally:
            watcher.cancel()
            if process.returncode is None:  # a step's own timeout interrupted it
                _kill(process)
            self._processes.discard(process)
        if await asyncio.to_thread(self._runner.canceled, self._run.id):
            raise RunStopped
        if code != 0:
            raise StepFailed(f"{failure} (exit status {code})")

    async def _copy_output(self, output: asyncio.StreamReader) -> None:
        """The step's output into the log with CRLF line ends, whatever its lines' length,
        up to `MAX_LOG_BYTES` for the whole run (the rest is read and dropped)."""
        pending = b""
        while chunk := await output.read(_CHUNK):
            pending += chunk
            lines, separator, pending = pending.rpartition(b"\n")
            if separator:
                lines = lines.removesuffix(b"\r").replace(b"\r\n", b"\n")
                self._append(lines.replace(b"\n", b"\r\n") + b"\r\n")
            if len(pending) > _CHUNK:  # a line without end: written as it is
                self._append(pending)
                pending = b""
        if pending:
            self._append(pending.rstrip(b"\r") + b"\r\n")

    def _append(self, data: bytes) -> None:
        if self._written >= MAX_LOG_BYTES:
            return
        if self._written + len(data) >= MAX_LOG_BYTES:
            data = data[: MAX_LOG_BYTES - self._written] + crlf("... (the log is cut here)")
        self._log.write(data)
        self._written += len(data)

    async def _watch_cancel(self, process: asyncio.subprocess.Process) -> None:
        while process.returncode is None:
            await asyncio.sleep(POLL_SECONDS)
            if await asyncio.to_thread(self._runner.canceled, self._run.id):
                _kill(process)
                return


@dataclass(frozen=True)
class _Output:
    reference: str  # login server / repository : tag
    repository: str
    tag: str


def _pushed(registry: RegistryRecord, output: _Output, digest: str) -> dict[str, str]:
    """An entry of the run's `outputImages`."""
    return {
        "registry": registry.login_server,
        "repository": output.repository,
        "tag": output.tag,
        "digest": digest,
    }


def _output(registry: RegistryRecord, name: str) -> _Output:
    """An image name of the request, filled: pushed to this registry only."""
    host, repository, tag = split_image(name)
    if host is not None and host.lower() != registry.login_server.lower():
        raise StepFailed(f"{name}: a run pushes to its own registry only ({registry.login_server})")
    return _Output(f"{registry.login_server}/{repository}:{tag}", repository, tag)


def _variables(
    registry: RegistryRecord, run: RunRecord, now: str, commit: str = "", branch: str = ""
) -> dict[str, str]:
    pushed = run.trigger.get("sourceTrigger") or {}
    return {
        # A git context's, else the source trigger's: empty otherwise, as on ACR.
        "Commit": commit or pushed.get("commitId", ""),
        "Branch": branch or pushed.get("branchName", ""),
        "ID": run.run_id,
        "Registry": registry.login_server,
        "RegistryName": registry.name,
        "Date": (run.started_at or run.created_at).strftime("%Y%m%d-%H%M%Sz"),
        "OS": "linux",
        "Architecture": platforms_of(run.request["platform"])[0].architecture,
        "TaskName": run.task_name or "",  # empty for a quick build or run, as on ACR
    }


def _unpack(source: Path, target: Path) -> None:
    """The context's tar.gz, with tarfile's `data` filter: no absolute paths, no `..`, no
    links out of the context, no devices, no set-id bits."""
    try:
        with tarfile.open(source, "r:*") as archive:
            archive.extractall(target, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise StepFailed(f"the build context is no readable tar.gz: {exc}") from None


def _unmount_below(root: Path) -> None:
    """Unmount what the storage driver left mounted under `root` (overlay), deepest first,
    so that removing the directory cannot reach through a mount."""
    mounts: list[str] = []
    try:
        with open("/proc/self/mounts") as table:
            mounts = [line.split()[1] for line in table]
    except OSError:
        return
    prefix = str(root) + "/"
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


def _kill(process: asyncio.subprocess.Process) -> None:
    """The step's whole process group (buildah's children with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _duration(seconds: int) -> str:
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
