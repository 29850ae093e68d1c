"""The portal's pages of a registry's operations and settings: its replications, its
tasks with their runs and a run's log (followed live while the run goes on), the audit
log, the usage charts, and the lists of its tokens and scope maps, role assignments,
network rules and cache rules.

Each page asks the management API's right of the matching ARM request (an identity's
control-plane role: `read` for the lists, `write` for a run's log, as `listLogSasUrl`
is a POST that needs it) and reads through the same services that request reads, never
its HTTP. Lists are bounded: the newest 50 runs or audit rows a page (the audit log
pages on time), 50 tokens and scope maps a page (keyset on the name)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dockyard.audit.log import AuditFilter, moment
from dockyard.auth.management import ASSIGN_ROLES
from dockyard.auth.management import READ as MANAGEMENT_READ
from dockyard.auth.management import WRITE as MANAGEMENT_WRITE
from dockyard.auth.permissions import ROLES
from dockyard.common.errors import RequestInvalid
from dockyard.metadata.portal import PortalQueries
from dockyard.metadata.tasks import QUEUED, RUNNING
from dockyard.metadata.usage import UsageStore, storage_days
from dockyard.portal import charts
from dockyard.portal.access import Viewer
from dockyard.tasks.runs import RunFilter

if TYPE_CHECKING:
    from dockyard.auth.administration import Credentials
    from dockyard.metadata.records import RegistryRecord
    from dockyard.metadata.tasks import RunRecord
    from dockyard.services import Services

PAGE = 50
# What a log page shows at most, and what one poll of a running log adds at most.
LOG_WINDOW = 64 * 1024
AUDIT_OPERATIONS = ("Push", "Pull", "Untag", "Delete")
POLL_SECONDS = 2
Handler = Callable[[Request, Viewer], Awaitable[Response]]
Wrapper = Callable[[Handler], Callable[[Request], Awaitable[Response]]]


class OperationsPages:
    """Mixed into `pages.Portal`, which renders (`render`) and wraps the handlers."""

    render: Callable[..., HTMLResponse]

    def operations_routes(self, page: Wrapper, action: Wrapper) -> list[BaseRoute]:
        """`page` wraps a GET handler (a session), `action` a POST's (and its CSRF token)."""
        base = "/portal/r/{registry}"
        token = f"{base}/access/tokens/{{token}}"
        return [
            Route(f"{base}/replications", page(self.replications), methods=["GET"]),
            Route(f"{base}/tasks", page(self.tasks), methods=["GET"]),
            Route(f"{base}/runs/{{run}}", page(self.run), methods=["GET"]),
            Route(f"{base}/runs/{{run}}/log", page(self.run_log), methods=["GET"]),
            Route(f"{base}/runs/{{run}}/cancel", action(self.cancel_run), methods=["POST"]),
            Route(f"{base}/audit", page(self.audit), methods=["GET"]),
            Route(f"{base}/usage", page(self.usage), methods=["GET"]),
            Route(f"{base}/access", page(self.access), methods=["GET"]),
            Route(f"{token}/status", action(self.token_status), methods=["POST"]),
            Route(f"{token}/delete", action(self.delete_token), methods=["POST"]),
        ]

    async def replications(self, request: Request, viewer: Viewer) -> Response:
        """Each replica as `GET .../replications` shows it (`Replications.list`, with
        each region's lag: one count over the outbox per region)."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        replicas = await asyncio.to_thread(viewer.services.replications.list, registry)
        return self.render(
            request,
            "replications.html",
            session=viewer.session,
            registry=registry,
            replicas=replicas,
        )

    async def tasks(self, request: Request, viewer: Viewer) -> Response:
        """The registry's tasks (`GET .../tasks`) and its newest runs (`GET .../runs`
        with `$top`), of one task if `?task=` names it."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        services = viewer.services
        task = request.query_params.get("task") or None
        found = await asyncio.to_thread(services.tasks.list, registry)
        runs = await asyncio.to_thread(
            services.runs.list, registry, RunFilter(task_name=task), PAGE
        )
        return self.render(
            request,
            "tasks.html",
            session=viewer.session,
            registry=registry,
            tasks=found,
            runs=runs,
            task=task,
        )

    async def run(self, request: Request, viewer: Viewer) -> Response:
        """A run (`GET .../runs/{id}`) and, for those who may read its log (the
        management API's `write`, as `listLogSasUrl`), the end of its log."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        services = viewer.services
        run = services.runs.get(registry, request.path_params["run"])
        may_log = viewer.may_manage(registry, MANAGEMENT_WRITE)
        live = run.status in (QUEUED, RUNNING)
        text, offset, start = "", 0, 0
        if may_log:
            size = await asyncio.to_thread(services.run_logs.size, registry.id, run.number)
            if size:
                start = max(0, size - LOG_WINDOW)
                text, offset = await asyncio.to_thread(
                    _log_text, services, run, start, size, not live, start > 0
                )
        return self.render(
            request,
            "run.html",
            session=viewer.session,
            registry=registry,
            run=run,
            may_log=may_log,
            may_cancel=may_log,
            log=text,
            offset=offset,
            skipped=start,
            live=live,
            poll=POLL_SECONDS,
        )

    async def run_log(self, request: Request, viewer: Viewer) -> Response:
        """What the log gained from byte `?from=` on, as htmx's poll appends it, with
        the next poll while the run goes on and the run's status (out of band)."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        services = viewer.services
        run = services.runs.get(registry, request.path_params["run"])
        raw = request.query_params.get("from", "0")
        if not raw.isdigit():
            raise RequestInvalid(f"from must be a byte offset, not {raw!r}")
        start = int(raw)
        # The status first: a run read as ended has its whole log written.
        live = run.status in (QUEUED, RUNNING)
        size = await asyncio.to_thread(services.run_logs.size, registry.id, run.number) or 0
        text, offset = "", start
        if size > start:
            end = min(size, start + LOG_WINDOW)
            text, offset = await asyncio.to_thread(
                _log_text, services, run, start, end, whole=not live and end == size
            )
        return self.render(
            request,
            "run_log.html",
            session=viewer.session,
            registry=registry,
            run=run,
            may_cancel=True,
            text=text,
            offset=offset,
            live=live or offset < size,
            poll=POLL_SECONDS,
        )

    async def cancel_run(self, request: Request, viewer: Viewer) -> Response:
        """A queued or running run canceled, as `POST .../runs/{id}/cancel` cancels it."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        run = await asyncio.to_thread(
            viewer.services.runs.cancel, registry, request.path_params["run"]
        )
        return RedirectResponse(
            f"/portal/r/{quote(registry.name)}/runs/{run.run_id}", status_code=303
        )

    async def token_status(self, request: Request, viewer: Viewer) -> Response:
        """A token enabled or disabled, as a `PATCH .../tokens/{name}` of its status."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        form = await request.form()
        status = str(form.get("status") or "")
        if status not in ("enabled", "disabled"):
            raise RequestInvalid("status must be enabled or disabled")
        name = request.path_params["token"]
        viewer.services.administration.set_token_enabled(registry, name, status == "enabled")
        return RedirectResponse(
            f"/portal/r/{quote(registry.name)}/access?changed={quote(name)}#tokens-h",
            status_code=303,
        )

    async def delete_token(self, request: Request, viewer: Viewer) -> Response:
        """A token deleted, as `DELETE .../tokens/{name}` deletes it."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        name = request.path_params["token"]
        viewer.services.administration.delete_token(registry, name)
        return RedirectResponse(
            f"/portal/r/{quote(registry.name)}/access?deleted={quote(name)}#tokens-h",
            status_code=303,
        )

    async def audit(self, request: Request, viewer: Viewer) -> Response:
        """The audit log as `GET .../logs` (and `dockyard logs query`) reads it
        (`AuditLog.query`): repository events or login events (`kind`), newest first,
        50 a page; the next page is the rows before the last one shown."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        params = request.query_params
        now = datetime.now(UTC)
        chosen = {key: (params.get(key) or "").strip() for key in ("since", "until", "before")}
        try:
            bounds = {key: moment(value, now) if value else None for key, value in chosen.items()}
        except ValueError as exc:
            raise RequestInvalid(str(exc)) from None
        kind = params.get("kind") or "repository"
        if kind not in ("repository", "login"):
            raise RequestInvalid("kind must be repository or login")
        operation = params.get("operation") or None
        if operation is not None and operation not in AUDIT_OPERATIONS:
            raise RequestInvalid(f"action must be one of {', '.join(AUDIT_OPERATIONS)}")
        if kind == "login":  # logins have neither a repository nor a repository action
            operation = None
        until = bounds["before"] or bounds["until"]
        if bounds["before"] and bounds["until"]:
            until = min(bounds["before"], bounds["until"])
        wanted = AuditFilter(
            since=bounds["since"],
            until=until,
            repository=(params.get("repository") or None) if kind == "repository" else None,
            operation=operation,
        )
        rows = await asyncio.to_thread(
            viewer.services.audit.query, registry, kind, wanted, PAGE + 1
        )
        following = rows[PAGE - 1]["TimeGenerated"] if len(rows) > PAGE else None
        return self.render(
            request,
            "audit.html",
            session=viewer.session,
            registry=registry,
            rows=rows[:PAGE],
            following=following,
            chosen=chosen,
            repository=params.get("repository") or "",
            operation=operation or "",
            operations=AUDIT_OPERATIONS,
            kind=kind,
        )

    async def usage(self, request: Request, viewer: Viewer) -> Response:
        """The last 30 days' pushes and pulls (the audit log, as `dockyard logs query`
        reads it) and storage (each day's recorded end, estimated where none is), as
        charts and as a table; the management API's `read`, as the audit log's."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        meta = viewer.services.meta
        now = datetime.now(UTC)
        start = charts.since(now)
        queries = PortalQueries(meta)
        counts = await asyncio.to_thread(queries.daily_operations, registry.id, start)
        arrivals = await asyncio.to_thread(queries.daily_arrivals, registry.id, start)
        used = UsageStore(meta).storage(registry.id).used_bytes
        recorded = await asyncio.to_thread(storage_days, meta, registry.id, start.date())
        rows = charts.usage_days(now, counts, arrivals, used, recorded)
        return self.render(
            request,
            "usage.html",
            session=viewer.session,
            registry=registry,
            rows=rows,
            operations_chart=charts.operations_chart(rows),
            storage_chart=charts.storage_chart(rows),
            colours=charts,
        )

    async def access(self, request: Request, viewer: Viewer) -> Response:
        """Who and what may reach the registry (the management API's `read`), with the
        forms of `AccessForms` for those who may change it."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        return await self.access_page(request, viewer, registry)

    async def access_page(
        self,
        request: Request,
        viewer: Viewer,
        registry: RegistryRecord,
        error: tuple[str, str] | None = None,
        credentials: Credentials | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        """The Access page: its scope maps and tokens (50 a page each, keyset on the
        name, as their ARM lists page), its role assignments, network rules and cache
        rules (as their `GET` lists read them); `error`: a form's refusal (its section,
        its words); `credentials`: a token just made, its passwords shown this once."""
        services = viewer.services
        params = request.query_params
        administration = services.administration
        scope_maps = administration.scope_maps(
            registry.id, after=params.get("maps_after") or None, limit=PAGE + 1
        )
        tokens = administration.tokens(
            registry.id, after=params.get("tokens_after") or None, limit=PAGE + 1
        )
        assignments = administration.role_assignments(registry.id)
        names = {
            a.identity_id: found.name
            for a in assignments
            if (found := administration.identity(a.identity_id)) is not None
        }
        return self.render(
            request,
            "access.html",
            status,
            session=viewer.session,
            registry=registry,
            scope_maps=scope_maps[:PAGE],
            maps_after=scope_maps[PAGE - 1].name if len(scope_maps) > PAGE else None,
            tokens=tokens[:PAGE],
            tokens_after=tokens[PAGE - 1].name if len(tokens) > PAGE else None,
            assignments=assignments,
            identities=names,
            network=services.network_policies.registry(registry.name),
            network_rules=services.network_policies.rules(registry.id),
            cache_rules=services.cache_rules.rules(registry),
            may_write=viewer.may_manage(registry, MANAGEMENT_WRITE),
            may_assign=viewer.may_manage(registry, ASSIGN_ROLES),
            roles=sorted(ROLES),
            changed=params.get("changed"),
            deleted=params.get("deleted"),
            done=params.get("done"),
            error=error,
            credentials=credentials,
        )


def _log_text(
    services: Services,
    run: RunRecord,
    start: int,
    end: int,
    whole: bool = False,
    from_line: bool = False,
) -> tuple[str, int]:
    """The log's bytes from `start` to `end` (exclusive) as text, and where the next
    read starts. Unless `whole`, only up to the last line end: a line still being
    written, or a character cut in two, waits for the next read (unless it fills the
    window). `from_line`: a window
    that starts mid-log starts at its first whole line."""
    data = services.run_logs.read(run.registry_id, run.number, start, end - 1)
    first = data.find(b"\n") + 1 if from_line else 0
    last = len(data) if whole else data.rfind(b"\n") + 1
    if last <= first and len(data) >= LOG_WINDOW:
        last = len(data)  # a line longer than the window: shown in parts, never stuck
    last = max(first, last)
    return data[first:last].decode("utf-8", errors="replace").replace("\r\n", "\n"), start + last
