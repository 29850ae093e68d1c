"""ACR Tasks as a `Feature`: its services (`Tasks`, `Runs`, the uploaded build contexts,
the runs' logs, the signed URLs that reach both), the Azure Blob endpoints those URLs
name (`blob_api.py`), the runner, the tasks' timer triggers (`timers.py`) and the
pruning of old run logs in the background work, and `dockyard build`. The management
API serves the ARM side (`management/api/runs.py`: listBuildSourceUploadUrl, scheduleRun, runs;
`management/api/tasks.py`: tasks; `management/api/task_runs.py`: taskRuns)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer
    from starlette.routing import BaseRoute

    from dockyard.common.errors import RegistryError
    from dockyard.services import Services
    from dockyard.settings import Settings
    from dockyard.tasks.runner import Runner


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.tasks.definitions import Tasks
    from dockyard.tasks.run_logs import RunLogs
    from dockyard.tasks.runs import Runs
    from dockyard.tasks.signed_urls import TaskUrls, UrlSigner
    from dockyard.tasks.sources import BuildSources
    from dockyard.tasks.task_runs import TaskRuns
    from dockyard.tasks.timers import TaskTimers

    settings = services.settings
    root = settings.data_dir.resolve() / "tasks"
    sources = BuildSources(root / "sources", settings.tasks.max_source_bytes)
    signer = UrlSigner(settings.secret_key_path.read_bytes().strip())
    tasks = Tasks(services.meta, services.box.seal, services.box.open, services.clock)
    runs = Runs(
        services.meta,
        sources,
        tasks,
        services.box.seal,
        settings.tasks.default_timeout_seconds,
    )
    return {
        "tasks": tasks,
        "task_timers": TaskTimers(services.meta, runs, services.clock),
        "build_sources": sources,
        "run_logs": RunLogs(
            root / "logs",
            services.meta,
            services.stores,
            services.registries,
            timedelta(days=settings.tasks.log_retention_days),
        ),
        "task_urls": TaskUrls(signer, services.clock, settings.tasks.url_minutes),
        "runs": runs,
        "task_runs": TaskRuns(services.meta, runs),
    }


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.tasks import blob_api

    return blob_api.routes


def _statuses() -> Mapping[type[RegistryError], int]:
    from dockyard.tasks.definitions import TaskDefinitionInvalid, TaskDisabled, TaskUnknown
    from dockyard.tasks.requests import RunRequestInvalid, RunRequestUnsupported
    from dockyard.tasks.runs import RunFilterInvalid, RunUnknown
    from dockyard.tasks.task_runs import TaskRunInvalid, TaskRunUnknown

    return {
        TaskUnknown: 404,
        TaskDefinitionInvalid: 400,
        TaskDisabled: 409,
        RunUnknown: 404,
        RunRequestInvalid: 400,
        RunRequestUnsupported: 400,
        RunFilterInvalid: 400,
        TaskRunUnknown: 404,
        TaskRunInvalid: 400,
    }


def make_runner(services: Services) -> Runner:
    """The runner of this process's background work, configured by `[tasks]` and `[tls]`
    (how its tools reach this server)."""
    from dockyard.tasks.builder import Tls
    from dockyard.tasks.runner import Runner, RunnerConfig

    settings = services.settings
    if settings.tls.self_signed:
        tls = Tls(True, settings.data_dir.resolve() / "tls")
    else:
        tls = Tls(settings.tls.cert_file is not None)
    config = RunnerConfig(
        settings.data_dir.resolve() / "tasks" / "work",
        settings.tasks.concurrency,
        settings.tasks.storage_driver,
        tls,
        settings.tasks.step_network,
        frozenset(settings.tasks.host_network_tasks),
    )
    return Runner(
        services.meta,
        services.registries,
        services.build_sources,
        services.run_logs,
        services.tokens,
        services.box,
        services.clock,
        config,
    )


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.tasks.run_logs import prune_logs

    return [
        make_runner(services).run(services.runs),
        services.task_timers.run(),
        prune_logs(services),
    ]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import tasks

    tasks.register(app)


TASKS = Feature(
    "tasks",
    services=_services,
    routes=_routes,
    statuses=_statuses,
    jobs=_jobs,
    cli=_cli,
)
