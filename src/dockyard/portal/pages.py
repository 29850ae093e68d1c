"""The portal's HTTP side under `/portal/`: sign-in and sign-out, the pages (each a
Jinja2 template, rendered on the server) and the few actions (a tag's locks, a tag's
delete), answered as whole pages or, for htmx's requests, as the fragment they replace.

Every request but the sign-in form's needs a session (`sessions.py`); every POST needs
the session's CSRF token, in the form (`csrf`) or in htmx's `X-CSRF-Token` header; every
page and action asks `access.Viewer` first, which decides as the APIs do, and then calls
the same operation the API would (`Properties.update_tag` as `/acr/v1` PATCH,
`Manifests.untag` as its DELETE). A domain error becomes a page with its status: a
caller without the right gets a 403 page, never the data."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dockyard.api.authorization import client_address, request_registry
from dockyard.api.errors import status_of
from dockyard.auth.administration import InvalidChange
from dockyard.auth.management import READ as MANAGEMENT_READ
from dockyard.auth.management import WRITE as MANAGEMENT_WRITE
from dockyard.auth.principals import AuthenticationFailed
from dockyard.common.errors import (
    BlobUnknown,
    NameUnknown,
    RegistryError,
    RequestInvalid,
    TooManyRequests,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.portal import files, views
from dockyard.portal.access import Viewer, registry_named
from dockyard.portal.access_forms import AccessForms
from dockyard.portal.oidc_signin import OidcSignIns, SignInFailed
from dockyard.portal.operations import OperationsPages
from dockyard.portal.sessions import (
    OIDC_COOKIE,
    OIDC_SECONDS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    SIGNIN_SECONDS,
    Cookies,
    Session,
    same_token,
)
from dockyard.portal.token_forms import TokenForms
from dockyard.sbom.inventory import image_packages
from dockyard.sbom.layers import normalized
from dockyard.scanning.severity import Severity
from dockyard.settings import OIDCIssuer
from dockyard.tiers.sizes import format_size
from dockyard.webhooks.payloads import ACTIONS as WEBHOOK_ACTIONS

if TYPE_CHECKING:
    from dockyard.services import Services

PREFIX = "/portal"
_HERE = Path(__file__).parent
Handler = Callable[[Request, Viewer], Awaitable[Response]]


class Portal(OperationsPages, AccessForms, TokenForms):
    """The templates and the cookie signer, built once per app."""

    def __init__(self, secret: bytes, issuers: Sequence[OIDCIssuer] = ()) -> None:
        self.cookies = Cookies(secret)
        self.oidc = OidcSignIns(issuers)
        self.templates = Environment(
            loader=FileSystemLoader(_HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["size"] = lambda n: "" if n is None else format_size(int(n))
        self.templates.filters["when"] = lambda t: t.strftime("%Y-%m-%d %H:%M:%S UTC")
        self.templates.filters["path"] = lambda s: quote(s, safe="/:@")

    def render(
        self, request: Request, template: str, code: int = 200, **values: Any
    ) -> HTMLResponse:
        html = self.templates.get_template(template).render(root=PREFIX, request=request, **values)
        return HTMLResponse(html, status_code=code)

    def routes(self) -> list[BaseRoute]:
        page, action = self._page, self._action
        repo = "/r/{registry}/repo/{name:path}"
        return [
            Route(f"{PREFIX}/signin", self.signin_form, methods=["GET"]),
            Route(f"{PREFIX}/signin", self.signin, methods=["POST"]),
            Route(f"{PREFIX}/signin/oidc/callback", self.oidc_callback, methods=["GET"]),
            Route(f"{PREFIX}/signin/oidc/{{index:int}}", self.oidc_start, methods=["GET"]),
            Route(f"{PREFIX}/signout", action(self.signout), methods=["POST"]),
            Route(f"{PREFIX}/", page(self.registries), methods=["GET"]),
            Route(f"{PREFIX}/r/{{registry}}/", page(self.repositories), methods=["GET"]),
            Route(f"{PREFIX}/r/{{registry}}/webhooks", page(self.webhooks), methods=["GET"]),
            Route(
                f"{PREFIX}/r/{{registry}}/webhooks", action(self.create_webhook), methods=["POST"]
            ),
            Route(
                f"{PREFIX}/r/{{registry}}/webhooks/{{webhook}}", page(self.webhook), methods=["GET"]
            ),
            Route(
                f"{PREFIX}/r/{{registry}}/webhooks/{{webhook}}/ping",
                action(self.ping_webhook),
                methods=["POST"],
            ),
            Route(
                f"{PREFIX}/r/{{registry}}/webhooks/{{webhook}}/status",
                action(self.webhook_status),
                methods=["POST"],
            ),
            Route(
                f"{PREFIX}/r/{{registry}}/webhooks/{{webhook}}/edit",
                action(self.edit_webhook),
                methods=["POST"],
            ),
            Route(
                f"{PREFIX}/r/{{registry}}/webhooks/{{webhook}}/delete",
                action(self.delete_webhook),
                methods=["POST"],
            ),
            *self.operations_routes(page, action),
            *self.access_form_routes(action),
            *self.token_form_routes(page, action),
            Route(f"{PREFIX}{repo}/_manifest/{{digest}}/_files", page(self.files), methods=["GET"]),
            Route(f"{PREFIX}{repo}/_manifest/{{digest}}/_file", page(self.file), methods=["GET"]),
            Route(f"{PREFIX}{repo}/_manifest/{{digest}}", page(self.manifest), methods=["GET"]),
            Route(f"{PREFIX}{repo}/_compare", page(self.compare), methods=["GET"]),
            Route(f"{PREFIX}{repo}/_tag/{{tag}}/locks", action(self.lock), methods=["POST"]),
            Route(f"{PREFIX}{repo}/_tag/{{tag}}/delete", page(self.confirm), methods=["GET"]),
            Route(f"{PREFIX}{repo}/_tag/{{tag}}/delete", action(self.delete), methods=["POST"]),
            Route(f"{PREFIX}{repo}", page(self.repository), methods=["GET"]),
            Mount(f"{PREFIX}/static", StaticFiles(directory=_HERE / "static"), name="static"),
            Route(PREFIX, _to_portal, methods=["GET"]),
        ]

    # -- sessions and the checks every request passes ------------------------------------

    def _session(self, request: Request) -> Session | None:
        return self.cookies.session(request.cookies.get(SESSION_COOKIE), time.time())

    def _page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                target = f"{PREFIX}/signin?next={quote(request.url.path)}"
                if request.headers.get("hx-request"):
                    return Response(status_code=401, headers={"HX-Redirect": target})
                return RedirectResponse(target, status_code=303)
            return await self._answer(request, session, handler)

        return endpoint

    def _action(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """A POST: a session and its CSRF token, or 403 before anything is done."""

        @wraps(handler)
        async def endpoint(request: Request) -> Response:
            session = self._session(request)
            form = await request.form()
            token = request.headers.get("x-csrf-token") or form.get("csrf")
            if session is None or not same_token(session.csrf, str(token or "")):
                return self._error(
                    request,
                    session,
                    403,
                    "The form has expired or did not come from here: "
                    "reload the page and try again.",
                )
            return await self._answer(request, session, handler)

        return endpoint

    async def _answer(self, request: Request, session: Session, handler: Handler) -> Response:
        viewer = Viewer(session, request.app.state.services)
        try:
            return await handler(request, viewer)
        except RegistryError as exc:
            return self._error(request, session, status_of(exc), _message(exc))
        except InvalidChange as exc:  # a change of access refused: a bad request, as on ARM
            return self._error(request, session, 400, str(exc))

    def _error(
        self, request: Request, session: Session | None, status: int, message: str
    ) -> Response:
        if request.headers.get("hx-request"):
            return HTMLResponse(message, status_code=status)
        return self.render(
            request, "error.html", status, session=session, status=status, message=message
        )

    # -- sign-in and sign-out ------------------------------------------------------------

    async def signin_form(self, request: Request) -> Response:
        return self._signin_page(request, 200, None)

    def _signin_page(self, request: Request, status: int, problem: str | None) -> Response:
        token, cookie = self.cookies.new_signin(time.time())
        response = self.render(
            request,
            "signin.html",
            status,
            session=None,
            csrf=token,
            problem=problem,
            next=_local(request.query_params.get("next")),
            offers=self.oidc.offers(),
        )
        _set_cookie(request, response, SIGNIN_COOKIE, cookie, SIGNIN_SECONDS)
        return response

    async def signin(self, request: Request) -> Response:
        """A user name and password: the admin user of the registry it names, else an
        identity's client id (or name) and secret, logged in by `Logins.password` with
        its lockout and login events."""
        services: Services = request.app.state.services
        form = await request.form()
        expected = self.cookies.signin_token(request.cookies.get(SIGNIN_COOKIE), time.time())
        if not same_token(expected, str(form.get("csrf") or "")):
            return self._signin_page(request, 403, "The form has expired: please sign in again.")
        username, password = str(form.get("username") or ""), str(form.get("password") or "")
        admin_of = registry_named(services, username)
        registry = admin_of or request_registry(request)
        try:
            principal = await services.logins.password(
                registry,
                username,
                password,
                client_address(request),
                request.headers.get("user-agent"),
                identities_only=admin_of is None,
            )
        except AuthenticationFailed:
            return self._signin_page(request, 401, "Incorrect user name or password.")
        except TooManyRequests as exc:
            return self._signin_page(request, 429, _message(exc))
        _, cookie = self.cookies.new_session(
            principal.subject,
            principal.name,
            registry.id if principal.kind == "admin" else None,
            time.time(),
        )
        response = RedirectResponse(_local(str(form.get("next") or "")), status_code=303)
        _set_cookie(request, response, SESSION_COOKIE, cookie, SESSION_SECONDS)
        response.delete_cookie(SIGNIN_COOKIE, path=PREFIX)
        return response

    async def oidc_start(self, request: Request) -> Response:
        """Off to the issuer's sign-in, with what this browser must bring back."""
        try:
            url, pending = await self.oidc.start(
                request.path_params["index"], _oidc_redirect_uri(request)
            )
        except SignInFailed as exc:
            return self._signin_page(request, exc.status, exc.message)
        pending["next"] = _local(request.query_params.get("next"))
        response = RedirectResponse(url, status_code=303)
        cookie = self.cookies.new_oidc(pending, time.time())
        _set_cookie(request, response, OIDC_COOKIE, cookie, OIDC_SECONDS)
        return response

    async def oidc_callback(self, request: Request) -> Response:
        """Back from the issuer: its ID token becomes a session, as a password does."""
        services: Services = request.app.state.services
        pending = self.cookies.oidc(request.cookies.get(OIDC_COOKIE), time.time())
        registry = request_registry(request)
        try:
            if pending is None:
                raise SignInFailed("The sign-in has expired or did not start here: try again.", 403)
            redirect_uri = _oidc_redirect_uri(request)
            answer = dict(request.query_params)
            issuer, id_token = await self.oidc.finish(pending, answer, redirect_uri)
            principal = await services.logins.signed_in(
                registry,
                issuer.issuer,
                id_token,
                str(issuer.portal_client_id),
                pending["nonce"],
                client_address(request),
                request.headers.get("user-agent"),
            )
        except SignInFailed as exc:
            response = self._signin_page(request, exc.status, exc.message)
        except AuthenticationFailed:
            response = self._signin_page(
                request,
                401,
                "The identity provider signed you in, but no identity here may sign in as "
                "you: ask an administrator.",
            )
        else:
            _, cookie = self.cookies.new_session(
                principal.subject, principal.name, None, time.time()
            )
            response = RedirectResponse(_local(pending.get("next")), status_code=303)
            _set_cookie(request, response, SESSION_COOKIE, cookie, SESSION_SECONDS)
        response.delete_cookie(OIDC_COOKIE, path=PREFIX)
        return response

    async def signout(self, request: Request, viewer: Viewer) -> Response:
        response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    # -- pages ---------------------------------------------------------------------------

    async def registries(self, request: Request, viewer: Viewer) -> Response:
        services = viewer.services
        shown = [
            views.registry_summary(services, registry)
            for registry in services.registries.all()
            if viewer.sees(registry)
        ]
        return self.render(
            request,
            "registries.html",
            session=viewer.session,
            registries=shown,
            listable={s.registry.name: viewer.may_list(s.registry) for s in shown},
            manageable={
                s.registry.name: viewer.may_manage(s.registry, MANAGEMENT_READ) for s in shown
            },
        )

    async def repositories(self, request: Request, viewer: Viewer) -> Response:
        registry = _registry(request, viewer)
        viewer.require_list(registry)
        query = request.query_params
        prefix, sort = query.get("prefix", "").strip().lower(), query.get("sort", "name")
        page = views.repositories(
            viewer.services, registry, prefix, sort == "updated", query.get("after")
        )
        return self.render(
            request,
            "repositories.html",
            session=viewer.session,
            registry=registry,
            page=page,
            prefix=prefix,
            sort=sort,
        )

    async def repository(self, request: Request, viewer: Viewer) -> Response:
        registry, name = _registry(request, viewer), request.path_params["name"]
        viewer.require_on(registry, name, "metadata_read")
        sort = request.query_params.get("sort", "name")
        attributes = viewer.services.properties.repository(registry, name)
        page = views.tags(
            viewer.services, registry, name, sort == "updated", request.query_params.get("after")
        )
        return self.render(
            request,
            "repository.html",
            session=viewer.session,
            registry=registry,
            name=name,
            repository=attributes,
            page=page,
            sort=sort,
            may_lock=viewer.may_on(registry, name, "metadata_write"),
            may_delete=viewer.may_on(registry, name, "delete|metadata_write"),
            deleted=request.query_params.get("deleted"),
        )

    async def manifest(self, request: Request, viewer: Viewer) -> Response:
        registry, name = _registry(request, viewer), request.path_params["name"]
        digest = request.path_params["digest"]
        viewer.require_on(registry, name, "metadata_read")
        try:
            minimum = Severity.named(request.query_params.get("severity") or "none")
        except ValueError:
            minimum = Severity.NONE
        readable, refused = True, None
        try:
            viewer.pull(registry, name, digest)
        except RegistryError as exc:
            readable, refused = False, _message(exc)
        view = views.manifest(
            viewer.services, registry, name, digest, readable=readable, minimum=minimum
        )
        return self.render(
            request,
            "manifest.html",
            session=viewer.session,
            registry=registry,
            name=name,
            view=view,
            readable=readable,
            refused=refused,
            severities=list(Severity),
            minimum=minimum,
        )

    async def files(self, request: Request, viewer: Viewer) -> Response:
        """One directory of a layer (`?layer=N`) or of the merged image, read from the
        layer blobs as they stream (`files.listing`); needs `pull`, as the blobs do."""
        registry, name, digest, layers, layer = self._inside(request, viewer)
        directory = normalized(request.query_params.get("path", ""))
        store = viewer.services.stores.for_registry(registry.name)
        found = await asyncio.to_thread(files.listing, store, layers, directory, layer)
        parts = directory.split("/") if directory else []
        return self.render(
            request,
            "files.html",
            session=viewer.session,
            registry=registry,
            name=name,
            digest=digest,
            layers=layers,
            layer=layer,
            directory=directory,
            crumbs=[("/".join(parts[: i + 1]), part) for i, part in enumerate(parts)],
            entries=found,
        )

    async def file(self, request: Request, viewer: Viewer) -> Response:
        """A regular file of one layer: its start as text, or its bytes (`download`)."""
        registry, name, digest, layers, layer = self._inside(request, viewer)
        path = normalized(request.query_params.get("path", ""))
        if layer is None:
            raise RequestInvalid("a file is read from one layer: give ?layer=")
        store = viewer.services.stores.for_registry(registry.name)
        if request.query_params.get("download"):
            size = await asyncio.to_thread(files.file_size, store, layers[layer], path)
            if size is None:
                raise BlobUnknown(f"no file {path} in layer {layer + 1}")
            base = path.rpartition("/")[2] or "file"
            return StreamingResponse(
                files.content(store, layers[layer], path),
                media_type="application/octet-stream",
                headers={
                    "Content-Length": str(size),
                    "Content-Disposition": f"attachment; filename*=UTF-8''{quote(base)}",
                },
            )
        shown = await asyncio.to_thread(files.preview, store, layers[layer], path)
        if shown is None:
            raise BlobUnknown(f"no file {path} in layer {layer + 1}")
        return self.render(
            request,
            "file.html",
            session=viewer.session,
            registry=registry,
            name=name,
            digest=digest,
            layer=layer,
            layer_digest=layers[layer],
            path=path,
            preview=shown,
        )

    async def compare(self, request: Request, viewer: Viewer) -> Response:
        """Two tags' images compared: files added, removed and changed in their merged
        filesystems, and packages changed (the SBOM feature's inventory)."""
        registry, name = _registry(request, viewer), request.path_params["name"]
        query = request.query_params
        before_tag, after_tag = query.get("from", ""), query.get("to", "")
        if not before_tag or not after_tag:
            raise RequestInvalid("give two tags to compare: ?from=TAG&to=TAG")
        records = [viewer.pull(registry, name, tag) for tag in (before_tag, after_tag)]
        layers = [views.image_layers(record) for record in records]
        if not all(layers):
            raise RequestInvalid("both tags must name images with layers (not an index)")
        services = viewer.services
        store = services.stores.for_registry(registry.name)
        trees = [await asyncio.to_thread(files.tree, store, found) for found in layers]
        packages = [
            await asyncio.to_thread(image_packages, services, registry, name, record.digest)
            for record in records
        ]
        return self.render(
            request,
            "compare.html",
            session=viewer.session,
            registry=registry,
            name=name,
            before=before_tag,
            after=after_tag,
            digests=[record.digest for record in records],
            difference=files.compare(*trees),
            packages=views.package_changes(*packages),
        )

    def _inside(
        self, request: Request, viewer: Viewer
    ) -> tuple[RegistryRecord, str, str, list[str], int | None]:
        """The registry, repository, manifest, its layers and the layer asked for (None:
        the merged image), once the viewer may pull the repository."""
        registry, name = _registry(request, viewer), request.path_params["name"]
        digest = request.path_params["digest"]
        layers = views.image_layers(viewer.pull(registry, name, digest))
        raw = request.query_params.get("layer")
        if raw is None or raw == "":
            return registry, name, digest, layers, None
        if not raw.isdigit() or not 1 <= int(raw) <= len(layers):
            raise RequestInvalid(f"layer must be 1 to {len(layers)}, not {raw!r}")
        return registry, name, digest, layers, int(raw) - 1

    async def webhooks(self, request: Request, viewer: Viewer) -> Response:
        """The registry's webhooks (the management API's `read`), and a form to add one
        (its `write`)."""
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_READ)
        return self.render(
            request,
            "webhooks.html",
            session=viewer.session,
            registry=registry,
            webhooks=viewer.services.webhooks.list(registry),
            actions=WEBHOOK_ACTIONS,
            may_write=viewer.may_manage(registry, MANAGEMENT_WRITE),
            created=request.query_params.get("created"),
            deleted=request.query_params.get("deleted"),
        )

    async def create_webhook(self, request: Request, viewer: Viewer) -> Response:
        """A webhook made as `PUT .../webhooks/{name}` makes it (`Webhooks.create`)."""
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        form = await request.form()
        name = str(form.get("name") or "")
        viewer.services.webhooks.create(
            registry,
            name,
            str(form.get("uri") or ""),
            [str(a) for a in form.getlist("actions")],
            scope=str(form.get("scope") or ""),
        )
        return RedirectResponse(
            f"{PREFIX}/r/{quote(registry.name)}/webhooks/{quote(name)}", status_code=303
        )

    async def webhook(self, request: Request, viewer: Viewer) -> Response:
        """One webhook; its delivery history (requests and answers, secrets masked) only
        for those the management API shows it to (`write`, as listEvents)."""
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_READ)
        return await self._webhook_page(
            request, viewer, registry, request.path_params["webhook"], None
        )

    async def _webhook_page(
        self,
        request: Request,
        viewer: Viewer,
        registry: RegistryRecord,
        name: str,
        error: str | None,
    ) -> Response:
        """A webhook's page, with the edit form's refusal if `error` (then a 400)."""
        services = viewer.services
        found = services.webhooks.get(registry, name)
        may_write = viewer.may_manage(registry, MANAGEMENT_WRITE)
        events = services.webhooks.events(registry, name, limit=50) if may_write else []
        return self.render(
            request,
            "webhook.html",
            400 if error else 200,
            session=viewer.session,
            registry=registry,
            webhook=found,
            events=events,
            may_write=may_write,
            actions=WEBHOOK_ACTIONS,
            error=error,
            changed=request.query_params.get("changed"),
        )

    async def ping_webhook(self, request: Request, viewer: Viewer) -> Response:
        """A ping POSTed now and its answer awaited (`Webhooks.ping`, in a thread)."""
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        name = request.path_params["webhook"]
        await asyncio.to_thread(viewer.services.webhooks.ping, registry, name)
        return RedirectResponse(
            f"{PREFIX}/r/{quote(registry.name)}/webhooks/{quote(name)}", status_code=303
        )

    async def webhook_status(self, request: Request, viewer: Viewer) -> Response:
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        name = request.path_params["webhook"]
        form = await request.form()
        viewer.services.webhooks.update(registry, name, status=str(form.get("status") or ""))
        return RedirectResponse(
            f"{PREFIX}/r/{quote(registry.name)}/webhooks/{quote(name)}", status_code=303
        )

    async def edit_webhook(self, request: Request, viewer: Viewer) -> Response:
        """A webhook changed as `PATCH .../webhooks/{name}` changes it (`Webhooks.update`):
        an empty URI or headers field keeps what is stored, as neither is ever shown
        back (they may hold credentials). A refusal is shown on the form, with a 400."""
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        name = request.path_params["webhook"]
        form = await request.form()
        uri = str(form.get("uri") or "").strip()
        headers_text = str(form.get("headers") or "")
        try:
            # Headers given replace the stored ones; none given keep them, unless cleared.
            headers = {} if form.get("clear_headers") else views.header_lines(headers_text)
            viewer.services.webhooks.update(
                registry,
                name,
                service_uri=uri or None,
                custom_headers=headers if headers or form.get("clear_headers") else None,
                actions=[str(a) for a in form.getlist("actions")],
                scope=str(form.get("scope") or "").strip(),
                status=str(form.get("status") or "enabled"),
            )
        except RequestInvalid as exc:
            return await self._webhook_page(request, viewer, registry, name, exc.message)
        return RedirectResponse(
            f"{PREFIX}/r/{quote(registry.name)}/webhooks/{quote(name)}?changed=1",
            status_code=303,
        )

    async def delete_webhook(self, request: Request, viewer: Viewer) -> Response:
        """A webhook deleted, its history with it, as `DELETE .../webhooks/{name}`."""
        registry = _registry(request, viewer)
        viewer.require_manage(registry, MANAGEMENT_WRITE)
        name = request.path_params["webhook"]
        viewer.services.webhooks.delete(registry, name)
        return RedirectResponse(
            f"{PREFIX}/r/{quote(registry.name)}/webhooks?deleted={quote(name)}", status_code=303
        )

    # -- actions -------------------------------------------------------------------------

    async def lock(self, request: Request, viewer: Viewer) -> Response:
        """A tag's lock switched, as `PATCH /acr/v1/<name>/_tags/<tag>` switches it."""
        registry, name = _registry(request, viewer), request.path_params["name"]
        tag = request.path_params["tag"]
        viewer.require_on(registry, name, "metadata_write")
        form = await request.form()
        changes = {
            field: form[key] == "true"
            for key, field in (
                ("writeEnabled", "write_enabled"),
                ("deleteEnabled", "delete_enabled"),
            )
            if key in form
        }
        viewer.services.properties.update_tag(registry, name, tag, changes)
        if not request.headers.get("hx-request"):
            return RedirectResponse(_repository_url(registry, name), status_code=303)
        found = viewer.services.properties.tag(registry, name, tag)
        sizes = views.PortalQueries(viewer.services.meta).manifest_sizes(
            registry.id, name, [found.digest]
        )
        row = views.TagRow(
            found.name,
            found.digest,
            sizes.get(found.digest),
            found.updated_at,
            found.locks.write_enabled,
            found.locks.delete_enabled,
        )
        return self.render(
            request,
            "tag_row.html",
            session=viewer.session,
            registry=registry,
            name=name,
            tag=row,
            may_lock=True,
            may_delete=viewer.may_on(registry, name, "delete|metadata_write"),
        )

    async def confirm(self, request: Request, viewer: Viewer) -> Response:
        registry, name = _registry(request, viewer), request.path_params["name"]
        tag = request.path_params["tag"]
        viewer.require_on(registry, name, "delete|metadata_write")
        found = viewer.services.properties.tag(registry, name, tag)
        return self.render(
            request,
            "confirm_delete.html",
            session=viewer.session,
            registry=registry,
            name=name,
            tag=found,
        )

    async def delete(self, request: Request, viewer: Viewer) -> Response:
        """A tag deleted, as `DELETE /acr/v1/<name>/_tags/<tag>` deletes it."""
        registry, name = _registry(request, viewer), request.path_params["name"]
        tag = request.path_params["tag"]
        viewer.require_on(registry, name, "delete|metadata_write")
        viewer.services.manifests.untag(registry, name, tag)
        return RedirectResponse(
            f"{_repository_url(registry, name)}?deleted={quote(tag)}", status_code=303
        )


async def _to_portal(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=308)


def _registry(request: Request, viewer: Viewer) -> RegistryRecord:
    return viewer.registry(request.path_params["registry"])


def _repository_url(registry: RegistryRecord, name: str) -> str:
    return f"{PREFIX}/r/{quote(registry.name)}/repo/{quote(name)}"


def _local(target: str | None) -> str:
    """Where to go after signing in: a portal page only (no open redirect)."""
    if target and target.startswith(f"{PREFIX}/") and not target.startswith("//"):
        return target
    return f"{PREFIX}/"


def _oidc_redirect_uri(request: Request) -> str:
    """Where the issuer sends the browser back: this server as the browser reached it."""
    return str(request.url.replace(path=f"{PREFIX}/signin/oidc/callback", query=""))


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=PREFIX,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _message(exc: RegistryError) -> str:
    """What a page says of a refusal: the error's own words (they never hold secrets)."""
    if isinstance(exc, NameUnknown):
        return "No such repository."
    return exc.message
