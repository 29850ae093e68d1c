"""The portal's changes of who and what may reach a registry, on its Access page:
scope maps (created, edited or deleted) and tokens (a new token's passwords shown once,
as `az acr token create` shows them; a token's own page is `token_forms.py`'s), role
assignments, network rules (an IP rule added or removed, the default action) and cache
rules, each created or deleted.

Each change asks the management API's right of the matching ARM request (`write`;
`roleAssignments/write` for role assignments) and goes through the service that request
calls (`Administration`, `RegistryResources.update`, `CacheRules`), never its HTTP. A
change the service refuses is shown on the Access page, above the form it came from,
with a 400: the refusal's own words, never a secret."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dockyard.api.errors import status_of
from dockyard.auth.administration import InvalidChange
from dockyard.auth.management import ASSIGN_ROLES
from dockyard.auth.management import WRITE as MANAGEMENT_WRITE
from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.management.registry_resources import RegistryChange, parse_network_rule_set
from dockyard.mirroring.imports import Reader
from dockyard.portal.access import Viewer

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord

Handler = Callable[[Request, Viewer], Awaitable[Response]]
Wrapper = Callable[[Handler], Callable[[Request], Awaitable[Response]]]
# Each form's section on the Access page: where a refusal is shown.
SECTIONS = ("maps", "tokens", "roles", "network", "cache")


class AccessForms:
    """Mixed into `pages.Portal` with `OperationsPages`, whose `access_page` renders the
    Access page (with a refusal, or a new token's passwords)."""

    access_page: Callable[..., Awaitable[HTMLResponse]]

    def access_form_routes(self, action: Wrapper) -> list[BaseRoute]:
        base = "/portal/r/{registry}/access"
        return [
            Route(f"{base}/scope-maps", action(self.create_scope_map), methods=["POST"]),
            Route(
                f"{base}/scope-maps/{{name}}/edit", action(self.edit_scope_map), methods=["POST"]
            ),
            Route(
                f"{base}/scope-maps/{{name}}/delete",
                action(self.delete_scope_map),
                methods=["POST"],
            ),
            Route(f"{base}/tokens", action(self.create_token), methods=["POST"]),
            Route(f"{base}/roles", action(self.assign_role), methods=["POST"]),
            Route(
                f"{base}/roles/{{assignment}}/delete", action(self.remove_role), methods=["POST"]
            ),
            Route(f"{base}/network", action(self.change_network), methods=["POST"]),
            Route(f"{base}/cache-rules", action(self.create_cache_rule), methods=["POST"]),
            Route(
                f"{base}/cache-rules/{{name}}/delete",
                action(self.delete_cache_rule),
                methods=["POST"],
            ),
        ]

    async def _change(
        self,
        request: Request,
        viewer: Viewer,
        section: str,
        change: Callable[[RegistryRecord, Any], object],
        done: str,
        right: str = MANAGEMENT_WRITE,
    ) -> Response:
        """Run `change(registry, form)` in a thread; back to the Access page saying
        `done`, or the page with the service's refusal above the section's form."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, right)
        form = await request.form()
        try:
            await asyncio.to_thread(change, registry, form)
        except (RegistryError, InvalidChange) as exc:
            return await self._refused(request, viewer, registry, section, exc)
        return RedirectResponse(
            f"/portal/r/{quote(registry.name)}/access?done={quote(done)}#{section}-h",
            status_code=303,
        )

    async def _refused(
        self,
        request: Request,
        viewer: Viewer,
        registry: RegistryRecord,
        section: str,
        exc: RegistryError | InvalidChange,
    ) -> Response:
        """The Access page with the refusal above the form (the API's status for it)."""
        status, message = refusal(exc)
        return await self.access_page(
            request, viewer, registry, error=(section, message), status=status
        )

    async def create_scope_map(self, request: Request, viewer: Viewer) -> Response:
        """A scope map made as `PUT .../scopeMaps/{name}` makes it: its actions one a
        line (`repositories/<name>/content/read`, ...)."""
        administration = viewer.services.administration

        def change(registry: RegistryRecord, form: Any) -> None:
            name = _required(form, "name", "a scope map needs a name")
            administration.put_scope_map(
                registry,
                name,
                _actions(form),
                str(form.get("description") or "").strip() or None,
            )

        return await self._change(request, viewer, "maps", change, "Scope map saved.")

    async def edit_scope_map(self, request: Request, viewer: Viewer) -> Response:
        """An existing scope map's actions and description replaced, as a `PATCH
        .../scopeMaps/{name}` replaces them (an empty description clears it)."""
        name = request.path_params["name"]
        administration = viewer.services.administration

        def change(registry: RegistryRecord, form: Any) -> None:
            if not administration.scope_maps(registry.id, name):
                raise InvalidChange(f"no scope map {name}")
            administration.put_scope_map(
                registry,
                name,
                _actions(form),
                str(form.get("description") or "").strip() or None,
            )

        return await self._change(request, viewer, "maps", change, f"Scope map {name} saved.")

    async def delete_scope_map(self, request: Request, viewer: Viewer) -> Response:
        """As `DELETE .../scopeMaps/{name}`: refused while a token uses it."""
        name = request.path_params["name"]
        administration = viewer.services.administration
        return await self._change(
            request,
            viewer,
            "maps",
            lambda registry, _: administration.delete_scope_map(registry, name),
            f"Scope map {name} deleted.",
        )

    async def create_token(self, request: Request, viewer: Viewer) -> Response:
        """A token made on a scope map as `PUT .../tokens/{name}` makes it; its two
        passwords shown on this answer only (never stored in clear, never shown again:
        `az acr token credential generate` makes new ones)."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        form = await request.form()
        administration = viewer.services.administration
        try:
            name = _required(form, "name", "a token needs a name")
            scope_map = _required(form, "scope_map", "a token needs a scope map")
            made = await asyncio.to_thread(administration.create_token, registry, name, scope_map)
        except (RegistryError, InvalidChange) as exc:
            return await self._refused(request, viewer, registry, "tokens", exc)
        page = await self.access_page(request, viewer, registry, credentials=made)
        page.headers["Cache-Control"] = "no-store"
        return page

    async def assign_role(self, request: Request, viewer: Viewer) -> Response:
        """A role given to an identity on the registry (or some of its repositories), as
        a `PUT` of a role assignment; needs `roleAssignments/write`, as there."""
        administration = viewer.services.administration

        def change(registry: RegistryRecord, form: Any) -> None:
            identity = _required(form, "identity", "name the identity (its name or id)")
            repository = str(form.get("repository") or "").strip() or None
            administration.assign_role(registry, identity, str(form.get("role") or ""), repository)

        return await self._change(
            request, viewer, "roles", change, "Role assigned.", right=ASSIGN_ROLES
        )

    async def remove_role(self, request: Request, viewer: Viewer) -> Response:
        """A role assignment of this registry removed, as its `DELETE`."""
        wanted = request.path_params["assignment"]
        administration = viewer.services.administration

        def change(registry: RegistryRecord, _: Any) -> None:
            if not any(a.id == wanted for a in administration.role_assignments(registry.id)):
                raise InvalidChange(f"no role assignment {wanted} on this registry")
            administration.remove_role_assignment(wanted)

        return await self._change(
            request, viewer, "roles", change, "Role assignment removed.", right=ASSIGN_ROLES
        )

    async def change_network(self, request: Request, viewer: Viewer) -> Response:
        """The registry's `networkRuleSet` changed as a `PATCH` of the registry changes
        it (`RegistryResources.update`: the tier's feature and IP rule limits apply):
        `add` an IP rule, `remove` one, or set `default_action`."""
        services = viewer.services
        resources = services.registry_resources

        def change(registry: RegistryRecord, form: Any) -> None:
            placement = resources.placement(registry.name)
            current = resources.get(placement, registry.name).network_rule_set
            rules, default = list(current.ip_rules), current.default_action
            if form.get("add"):
                rules.append(str(form.get("add")).strip())
            if form.get("remove"):
                rules = [rule for rule in rules if rule != str(form.get("remove"))]
            if form.get("default_action"):
                default = str(form.get("default_action"))
            wanted = parse_network_rule_set(default, rules)
            resources.update(placement, registry.name, RegistryChange(network_rule_set=wanted))

        return await self._change(request, viewer, "network", change, "Network rules saved.")

    async def create_cache_rule(self, request: Request, viewer: Viewer) -> Response:
        """A cache rule made as `PUT .../cacheRules/{name}` makes it, by the signed-in
        identity (whose reads of a source on this server it checks)."""
        cache_rules = viewer.services.cache_rules
        author = Reader(viewer.session.subject.partition(":")[2])

        def change(registry: RegistryRecord, form: Any) -> None:
            cache_rules.create_rule(
                registry,
                _required(form, "name", "a cache rule needs a name"),
                _required(form, "source", "a cache rule needs a source repository"),
                _required(form, "target", "a cache rule needs a target repository"),
                author,
                str(form.get("credential_set") or "").strip() or None,
            )

        return await self._change(request, viewer, "cache", change, "Cache rule created.")

    async def delete_cache_rule(self, request: Request, viewer: Viewer) -> Response:
        name = request.path_params["name"]
        cache_rules = viewer.services.cache_rules
        return await self._change(
            request,
            viewer,
            "cache",
            lambda registry, _: cache_rules.delete_rule(registry, name),
            f"Cache rule {name} deleted.",
        )


def refusal(exc: RegistryError | InvalidChange) -> tuple[int, str]:
    """A refused change's status and words, as the management API answers it (an
    `InvalidChange` is a 400 there too)."""
    if isinstance(exc, InvalidChange):
        return 400, str(exc)
    return status_of(exc), exc.message


def _actions(form: Any) -> list[str]:
    """The form's actions, one a line (blank lines dropped)."""
    lines = (line.strip() for line in str(form.get("actions") or "").splitlines())
    return [line for line in lines if line]


def _required(form: Any, field: str, message: str) -> str:
    value = str(form.get(field) or "").strip()
    if not value:
        raise RequestInvalid(message)
    return value
