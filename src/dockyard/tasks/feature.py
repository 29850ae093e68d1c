"""ACR Tasks as a `Feature`: its services (`Tasks`, `Runs`, the uploaded build contexts,
the runs' logs, the signed URLs that reach both, the triggers), the Azure Blob endpoints
those URLs name (`blob_api.py`) and the source triggers' webhook URLs (`hooks_api.py`),
the runner, the timer triggers (`timers.py`), the polling of base images elsewhere
(`base_image_triggers.py`) and the pruning of old run logs in the background work, the
outbox consumer that starts the runs of tasks whose base image was pushed here, and
`dockyard build`. The management API serves the ARM side (`management/api/runs.py`:
listBuildSourceUploadUrl, scheduleRun, runs; `management/api/tasks.py`: tasks;
`management/api/task_runs.py`: taskRuns)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer
    from starlette.routing import BaseRoute

    from dockyard.common.errors import RegistryError
    from dockyard.events import Consumer
    from dockyard.services import Services
    from dockyard.settings import Settings
    from dockyard.tasks.runner import Runner


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.tasks.base_image_triggers import BaseImageTriggers
    from dockyard.tasks.definitions import Tasks
    from dockyard.tasks.run_logs import RunLogs
    from dockyard.tasks.runs import Runs
    from dockyard.tasks.signed_urls import TaskUrls, UrlSigner
    from dockyard.tasks.source_triggers import SourceTriggers
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
        settings.tasks.local_git_contexts,
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
        "source_triggers": SourceTriggers(services.meta, tasks, runs),
        "base_image_triggers": BaseImageTriggers(
            services.meta,
            runs,
            services.clock,
            settings.tasks.base_image_poll_seconds,
            settings.upstream.insecure_hosts,
        ),
    }


def _routes(settings: Settings) -> Sequence[BaseRoute]:
    from dockyard.tasks import blob_api, hooks_api

    return [*hooks_api.routes, *blob_api.routes]


def _public_paths(settings: Settings) -> frozenset[str]:
    """The source triggers' webhook URLs: a git host's deliveries carry their own
    credential (the signature) and come from wherever the host runs."""
    from dockyard.tasks.hooks_api import PREFIX

    return frozenset({PREFIX})


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
    from dockyard.tasks.base_image_triggers import BaseImageTracker
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
        BaseImageTracker(services.meta, services.registries),
    )


def _jobs(services: Services) -> Sequence[Awaitable[None]]:
    from dockyard.tasks.run_logs import prune_logs

    return [
        make_runner(services).run(services.runs),
        services.task_timers.run(),
        services.base_image_triggers.run(),
        prune_logs(services),
    ]


def _consumers(services: Services) -> Sequence[Consumer]:
    """A push that moves a tag starts the runs of the tasks built on it."""
    from dockyard.core.events import Envelope, TagMoved
    from dockyard.events import Consumer

    def moved(envelope: Envelope) -> None:
        event = envelope.event
        if isinstance(event, TagMoved) and not event.held:
            services.base_image_triggers.tag_moved(
                event.registry_id,
                event.repository,
                event.tag,
                event.digest,
                None if event.origin is None else event.origin.identity,
            )

    return [Consumer("task-base-images", moved, (TagMoved,))]


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import tasks

    tasks.register(app)


TASKS = Feature(
    "tasks",
    services=_services,
    routes=_routes,
    public_paths=_public_paths,
    statuses=_statuses,
    jobs=_jobs,
    consumers=_consumers,
    cli=_cli,
)
