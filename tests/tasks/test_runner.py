"""The runner in process, with the real buildah: builds that need no registry (`FROM
scratch`, busybox copied in) run to their end, time out, are canceled, fail on a bad
context; each leaves its outcome, its log and no working directory. Builds that pull and
push are tests/integration/test_tasks.py's. A test that cannot run buildah fails."""

from __future__ import annotations

import asyncio
import io
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.tasks import RunWrites
from dockyard.services import Services
from dockyard.tasks.feature import make_runner
from dockyard.tasks.requests import DOCKER_BUILD, ENCODED_TASK, RunPlan

BUSYBOX = Path("/bin/busybox")


@pytest.fixture
def services(make_services) -> Services:
    assert shutil.which("buildah") and shutil.which("unshare"), "run make install"
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )


def archive(dockerfile: str, extra: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in {"Dockerfile": dockerfile.encode(), **(extra or {})}.items():
            member = tarfile.TarInfo(name)
            member.size, member.mode = len(data), 0o755
            tar.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def queue(
    services: Services,
    context: bytes,
    timeout: int = 600,
    task: str | None = None,
    values_file: str | None = None,
    login_server: str = "localhost:5000",
    task_name: str | None = None,
) -> tuple[RegistryRecord, str]:
    """A Docker build of `context`, or the task file `task` with it, queued as
    scheduleRun queues it (any timeout)."""
    registry = services.registries.for_host(login_server)
    sources = services.build_sources
    name = sources.new_name()

    async def body():
        yield context

    asyncio.run(sources.put(registry.id, name, body()))
    plan = RunPlan(
        kind=DOCKER_BUILD if task is None else ENCODED_TASK,
        source=sources.relative_path(registry.id, name),
        timeout_seconds=timeout,
        platform={"os": "linux", "architecture": "amd64"},
        task_text=task,
        values_file=values_file,
    )
    with services.meta.transaction() as tx:
        number = RunWrites(tx).add(
            registry.id, "QuickBuild", plan.as_json(), plan.source, timeout, task_name
        )
    return registry, f"ca{number}"


def execute(services: Services, registry: RegistryRecord, run_id: str, cancel_after: float = 0):
    runner = make_runner(services)

    async def go() -> None:
        await runner.claim_due()
        if cancel_after:
            await asyncio.sleep(cancel_after)
            await asyncio.to_thread(services.runs.cancel, registry, run_id)
        await runner.finished()

    asyncio.run(go())
    run = services.runs.get(registry, run_id)
    # The ended run's log is kept in the registry's blob store, its file gone.
    assert not services.run_logs.path(registry.id, run.number).exists()
    size = services.run_logs.size(registry.id, run.number) or 0
    log = services.run_logs.read(registry.id, run.number, 0, size - 1).decode()
    assert list((services.settings.data_dir / "tasks" / "work").iterdir()) == []
    assert [
        p for p in (services.settings.data_dir / "tasks" / "sources").rglob("*") if p.is_file()
    ] == []
    return run, log


SCRATCH = "FROM scratch\nCOPY busybox /bin/busybox\n"


@pytest.mark.parametrize("driver", ["vfs", "overlay"])
def test_a_build_without_push_succeeds(make_services, driver: str) -> None:
    services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        tasks={"storage_driver": driver},
    )
    dockerfile = SCRATCH + 'RUN ["/bin/busybox", "echo", "built here"]\n'
    registry, run_id = queue(services, archive(dockerfile, {"busybox": BUSYBOX.read_bytes()}))
    run, log = execute(services, registry, run_id)
    assert run.status == "Succeeded", log
    assert run.output_images == [] and "built here\r\n" in log
    assert f"Run ID: {run_id} was successful" in log


def test_a_build_past_its_timeout_is_stopped(services: Services) -> None:
    dockerfile = SCRATCH + 'RUN ["/bin/busybox", "sleep", "60"]\n'
    registry, run_id = queue(services, archive(dockerfile, {"busybox": BUSYBOX.read_bytes()}), 3)
    run, log = execute(services, registry, run_id)
    assert run.status == "Timeout", log
    assert "the run timed out after 3s" in log and run.error_message


def test_a_canceled_build_stops(services: Services) -> None:
    dockerfile = SCRATCH + 'RUN ["/bin/busybox", "sleep", "60"]\n'
    registry, run_id = queue(services, archive(dockerfile, {"busybox": BUSYBOX.read_bytes()}))
    run, log = execute(services, registry, run_id, cancel_after=3)
    assert run.status == "Canceled", log
    assert f"Run ID: {run_id} was canceled" in log


def test_a_context_that_is_no_archive_fails(services: Services) -> None:
    registry, run_id = queue(services, b"not a tar.gz")
    run, log = execute(services, registry, run_id)
    assert run.status == "Failed" and "no readable tar.gz" in log


def test_a_context_escaping_its_directory_fails(services: Services) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        member = tarfile.TarInfo("../../escaped")
        tar.addfile(member, io.BytesIO(b""))
    registry, run_id = queue(services, buffer.getvalue())
    run, _ = execute(services, registry, run_id)
    assert run.status == "Failed"
    assert not (services.settings.data_dir / "tasks" / "escaped").exists()


TOOLS = (
    SCRATCH + 'RUN ["/bin/busybox", "--install", "-s", "/bin"]\nENV PATH=/bin\n'
    'ENTRYPOINT ["/bin/busybox"]\n'
)
STEPS = """version: v1.1.0
steps:
  - id: tools
    build: -t localhost/tools:1 .
  - id: flaky
    cmd: localhost/tools:1 sh -c "test -e tried || { touch tried; exit 1; }; echo second try"
    retries: 1
    when: [tools]
  - id: slow
    cmd: localhost/tools:1 sleep 60
    timeout: 2
    ignoreErrors: true
    when: [tools]
  - id: server
    cmd: localhost/tools:1 sleep 300
    detach: true
    when: [tools]
  - id: last
    cmd: localhost/tools:1 echo after all, {{.Values.who}}
    entryPoint: /bin/busybox
    when: [flaky, slow, server]
"""


def test_a_task_file_runs_its_steps(services: Services) -> None:
    """A build, then a step that succeeds on its retry, one past its own timeout whose
    error is ignored and a detached one, all three at once, then the last: on the image
    the first built, without a registry."""
    context = archive(TOOLS, {"busybox": BUSYBOX.read_bytes(), "values.yaml": b"who: me\n"})
    registry, run_id = queue(services, context, task=STEPS, values_file="values.yaml")
    run, log = execute(services, registry, run_id)
    assert run.status == "Succeeded", log
    assert "Step ID: flaky failed (" in log and "second try\r\n" in log
    assert "Step ID: slow failed, its errors are ignored: the step timed out after 2s" in log
    assert "Step ID: server marked as successful" in log
    assert log.index("Executing step ID: last") > log.index("Step ID: slow failed")
    assert "after all, me\r\n" in log and run.output_images == []


def test_a_canceled_task_file_stops_its_parallel_steps(services: Services) -> None:
    steps = (
        "steps:\n  - id: tools\n    build: -t localhost/tools:1 .\n"
        "  - {id: a, cmd: localhost/tools:1 sleep 120, when: [tools]}\n"
        "  - {id: b, cmd: localhost/tools:1 sleep 120, when: [tools]}\n"
    )
    context = archive(TOOLS, {"busybox": BUSYBOX.read_bytes()})
    registry, run_id = queue(services, context, task=steps)
    started = time.monotonic()
    run, log = execute(services, registry, run_id, cancel_after=6)
    assert run.status == "Canceled", log
    assert "Executing step ID: a." in log and "Executing step ID: b." in log
    assert time.monotonic() - started < 30
