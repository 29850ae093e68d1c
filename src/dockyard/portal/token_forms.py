"""The portal's page of one repository-scoped token: its scope map, status and
passwords (names, creation and expiry: never a value), and for those who may change it
the forms that edit it, make a new value of a password (shown on that answer only, as
`az acr token credential generate` shows it) or delete one.

Each change asks the management API's `write`, as the matching ARM request does, and
makes that request's service calls (`Administration.set_token_scope_map`,
`set_token_enabled`, `regenerate_token_password`, `delete_token_password`), never its
HTTP. A refusal is shown above the token's forms with the API's status, and changes
nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from dockyard.auth.administration import TOKEN_PASSWORD_NAMES, InvalidChange
from dockyard.auth.management import READ as MANAGEMENT_READ
from dockyard.auth.management import WRITE as MANAGEMENT_WRITE
from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.management.api.arm import require_found
from dockyard.management.api.tokens import parse_expiry
from dockyard.portal.access import Viewer
from dockyard.portal.access_forms import refusal

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord

Handler = Callable[[Request, Viewer], Awaitable[Response]]
Wrapper = Callable[[Handler], Callable[[Request], Awaitable[Response]]]
STATUSES = ("enabled", "disabled")
# How many scope map names the edit form suggests (any name may be typed).
SUGGESTED_MAPS = 100


class TokenForms:
    """Mixed into `pages.Portal`, which renders (`render`) and wraps the handlers."""

    render: Callable[..., HTMLResponse]

    def token_form_routes(self, page: Wrapper, action: Wrapper) -> list[BaseRoute]:
        token = "/portal/r/{registry}/access/tokens/{token}"
        return [
            Route(token, page(self.token), methods=["GET"]),
            Route(f"{token}/edit", action(self.edit_token), methods=["POST"]),
            Route(f"{token}/passwords", action(self.generate_password), methods=["POST"]),
            Route(
                f"{token}/passwords/{{password}}/delete",
                action(self.delete_password),
                methods=["POST"],
            ),
        ]

    async def token(self, request: Request, viewer: Viewer) -> Response:
        """The token as `GET .../tokens/{name}` shows it (the management API's `read`)."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_READ)
        return await self._token_page(request, viewer, registry)

    async def _token_page(
        self,
        request: Request,
        viewer: Viewer,
        registry: RegistryRecord,
        error: str | None = None,
        status: int = 200,
        generated: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        """`error`: a refusal, shown above the forms; `generated`: a password's name and
        its new value, shown this once."""
        administration = viewer.services.administration
        name = request.path_params["token"]
        found = administration.tokens(registry.id, name)
        token = require_found(found[0] if found else None, "token", name)
        passwords = {p.name: p for p in administration.token_passwords(token.id)}
        maps = administration.scope_maps(registry.id, limit=SUGGESTED_MAPS)
        page = self.render(
            request,
            "token.html",
            status,
            session=viewer.session,
            registry=registry,
            token=token,
            passwords=[(n, passwords.get(n)) for n in TOKEN_PASSWORD_NAMES],
            scope_maps=[m.name for m in maps],
            statuses=STATUSES,
            may_write=viewer.may_manage(registry, MANAGEMENT_WRITE),
            done=request.query_params.get("done"),
            error=error,
            generated=generated,
        )
        if generated is not None:
            page.headers["Cache-Control"] = "no-store"
        return page

    async def _token_change(
        self,
        request: Request,
        viewer: Viewer,
        change: Callable[[RegistryRecord, Any], Any],
        answer: Callable[[RegistryRecord, Any], Awaitable[Response]],
    ) -> Response:
        """Run `change(registry, form)` with the management API's `write`, then
        `answer(registry, its result)`; or the token's page with the refusal (the API's
        status for it)."""
        registry = viewer.registry(request.path_params["registry"])
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        form = await request.form()
        try:
            result = await asyncio.to_thread(change, registry, form)
        except (RegistryError, InvalidChange) as exc:
            status, message = refusal(exc)
            return await self._token_page(request, viewer, registry, error=message, status=status)
        return await answer(registry, result)

    @staticmethod
    def _back(name: str, done: str) -> Callable[[RegistryRecord, Any], Awaitable[Response]]:
        """Back to the token's page, saying `done`."""

        async def answer(registry: RegistryRecord, _: Any) -> Response:
            page = f"/portal/r/{quote(registry.name)}/access/tokens/{quote(name)}"
            return RedirectResponse(f"{page}?done={quote(done)}", status_code=303)

        return answer

    async def edit_token(self, request: Request, viewer: Viewer) -> Response:
        """Its scope map and status changed as a `PATCH .../tokens/{name}` changes them
        (disabling also revokes its refresh tokens)."""
        administration = viewer.services.administration
        name = request.path_params["token"]

        def change(registry: RegistryRecord, form: Any) -> None:
            scope_map = str(form.get("scope_map") or "").strip()
            status = str(form.get("status") or "")
            if not scope_map:
                raise RequestInvalid("a token needs a scope map")
            if status not in STATUSES:
                raise RequestInvalid("status must be enabled or disabled")
            administration.set_token_scope_map(registry, name, scope_map)
            administration.set_token_enabled(registry, name, status == "enabled")

        return await self._token_change(
            request, viewer, change, self._back(name, f"Token {name} saved.")
        )

    async def generate_password(self, request: Request, viewer: Viewer) -> Response:
        """A new value of one password, as `POST .../generateCredentials` with its
        `name` and `expiry` makes it; the old value stops working, the new one is shown
        on this answer only (`Cache-Control: no-store`)."""
        administration = viewer.services.administration
        name = request.path_params["token"]

        def change(registry: RegistryRecord, form: Any) -> tuple[str, str]:
            password_name = str(form.get("password") or "")
            expiry = str(form.get("expiry") or "").strip() or None
            moment = parse_expiry(expiry, "the expiry date")
            value = administration.regenerate_token_password(registry, name, password_name, moment)
            return password_name, value

        async def shown(registry: RegistryRecord, made: tuple[str, str]) -> Response:
            return await self._token_page(request, viewer, registry, generated=made)

        return await self._token_change(request, viewer, change, shown)

    async def delete_password(self, request: Request, viewer: Viewer) -> Response:
        """One password deleted, as an update that leaves it out of
        `credentials.passwords` deletes it (`az acr token credential delete`)."""
        administration = viewer.services.administration
        name, password = request.path_params["token"], request.path_params["password"]
        return await self._token_change(
            request,
            viewer,
            lambda registry, _: administration.delete_token_password(registry, name, password),
            self._back(name, f"{password} of token {name} deleted."),
        )
