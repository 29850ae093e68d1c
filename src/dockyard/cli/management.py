"""A Dockyard server's management API (ARM-shaped, `/subscriptions/...`) as the online
`dockyard` verbs see it, the way `az` sees Azure Resource Manager: one server, reached
over HTTP only, never its database.

- Where: `--server HOST:PORT` (or `DOCKYARD_SERVER`), else the server `dockyard login`
  logged in to last (it remembers it, with `--insecure` and `--ca-file`).
- Who, as `az login` then `az acr`: `--client-id`/`--client-secret` (or
  `DOCKYARD_CLIENT_ID`/`DOCKYARD_CLIENT_SECRET`) buy an identity token for the
  management audience with the client-credentials grant; else the refresh token
  `dockyard login` stored for the server buys one (an identity's only), both at
  `/oauth2/v2.0/token`, which no registry's network rules guard, as they guard neither
  Entra ID nor the management API. Tokens are asked for on the first 401 only, so a server started
  with `--no-auth` needs none. The server then checks the identity's control roles
  (Owner, Contributor, Reader).
- Placement: a registry is found by name or login server in every subscription the
  server lists (or only in `--subscription`, `DOCKYARD_SUBSCRIPTION`), so subscriptions
  and resource groups are never typed; new registries go to the first subscription and
  resource group the server lists (its defaults) unless `--subscription` and
  `--resource-group`.
- ARM long-running operations (201/202 with `Azure-AsyncOperation` or `Location`) are
  followed to their end, with a spinner on a terminal's stderr (stdout stays JSON), or
  shown by the verb from each answer the poll gets (`call(..., watch=)`: importImage's
  progress).

Owns the error line too: ARM's `{"error": {"code", "message"}}` and what to do next."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import httpx
import typer
from rich.console import Console

from dockyard.cli.local import fail
from dockyard.cli.login import NULL_GUID, remembered_server, stored_login
from dockyard.cli.remote import CAFileOption, InsecureOption, tls_context

API_VERSION = "2025-11-01"
PROVIDER = "Microsoft.ContainerRegistry"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"
_TIMEOUT = 60.0
_POLL_SECONDS = 1.0
_LONGEST_WAIT_SECONDS = 600.0

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="DOCKYARD_SERVER",
        help="The Dockyard server, HOST:PORT or its URL (default: the one `dockyard login` "
        "logged in to last).",
        show_default=False,
    ),
]
ClientIdOption = Annotated[
    str | None,
    typer.Option(
        "--client-id",
        envvar="DOCKYARD_CLIENT_ID",
        help="An identity's client id (default: what `dockyard login` stored).",
        show_default=False,
    ),
]
ClientSecretOption = Annotated[
    str | None,
    typer.Option(
        "--client-secret",
        envvar="DOCKYARD_CLIENT_SECRET",
        help="The identity's secret.",
        show_default=False,
    ),
]
SubscriptionOption = Annotated[
    str | None,
    typer.Option(
        "--subscription",
        envvar="DOCKYARD_SUBSCRIPTION",
        help="Subscription id (default: the server's default).",
        show_default=False,
    ),
]

# Progress goes to stderr, and only on a terminal: stdout may be JSON for a script.
progress_console = Console(stderr=True)


class Management:
    """One server's management API, as one caller."""

    def __init__(
        self,
        server: str | None,
        subscription: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        insecure: bool = False,
        ca_file: Path | None = None,
    ) -> None:
        remembered = remembered_server()
        if server is None:
            if remembered is None:
                fail(
                    "which server? pass --server HOST:PORT (or set DOCKYARD_SERVER), or run "
                    "dockyard login HOST:PORT first"
                )
            server = remembered["server"]
        scheme, separator, address = server.partition("://")
        if separator:  # a URL rather than HOST:PORT: its scheme says HTTP or HTTPS
            server, insecure = address.rstrip("/"), insecure or scheme == "http"
        if remembered is not None and remembered["server"] == server:
            insecure = insecure or remembered.get("insecure", False)
            if ca_file is None and remembered.get("ca_file"):
                ca_file = Path(remembered["ca_file"])
        if (client_id is None) != (client_secret is None):
            fail("--client-id and --client-secret go together")
        self.server = server
        self.scheme = "http" if insecure else "https"
        self._subscription = subscription
        self._subscriptions: list[str] | None = None
        self._client = (client_id, client_secret) if client_id and client_secret else None
        self._token: str | None = None
        self._registries: dict[str, dict[str, Any]] = {}
        self._http = httpx.Client(
            base_url=f"{self.scheme}://{server}",
            verify=tls_context(ca_file),
            timeout=_TIMEOUT,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Management:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP ------------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        params = dict(kwargs.pop("params", None) or {})
        if "api-version=" not in url:
            params.setdefault("api-version", API_VERSION)
        if params:  # httpx replaces a URL's own query (a link's) with any params given
            kwargs["params"] = params
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            return self._http.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            hint = "drop --insecure for HTTPS" if self.scheme == "http" else "try --insecure"
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                hint = "pass --ca-file with the server's CA, or set SSL_CERT_FILE"
            fail(f"cannot reach {self.server}: {exc} ({hint})")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """`url` (a path from `/subscriptions`, or a link the server gave) with the
        management token, bought on the first 401."""
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and self._token is None:
            self._token = self._buy_token()
            response = self._send(method, url, **kwargs)
        return response

    def unauthenticated(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A URL the server handed out that carries its own credential (a build context's
        upload URL, a run's log URL): sent without the management token."""
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.server}: {exc}")

    def call(
        self,
        method: str,
        url: str,
        watch: Callable[[httpx.Response], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """`request`, following a long-running operation to its end (`watch` sees each
        answer while it runs, instead of a spinner); the JSON answer (None when there is
        no body). Refusals end the command with one line."""
        response = self.request(method, url, **kwargs)
        if response.status_code in (201, 202) and _operation_url(response):
            response = self._follow(method, url, response, watch)
        if response.status_code >= 400:
            fail(explain(response, self.server))
        return response.json() if response.content else None

    def create(self, url: str, what: str, body: dict[str, Any]) -> Any:
        """PUT a new resource. ARM's PUT also replaces an existing one; a `create` verb
        must not, so an existing `what` ends the command with one line instead."""
        if self.request("GET", url).status_code == 200:
            fail(f"{what} exists already; the update verb changes it")
        return self.call("PUT", url, json=body)

    def delete(self, url: str) -> None:
        """DELETE a resource that must exist. ARM answers a missing one's DELETE with 204,
        which a delete verb must not report as done, so a GET first ends the command
        with the server's error instead."""
        self.call("GET", url)
        self.call("DELETE", url)

    def values(self, url: str, method: str = "GET", **kwargs: Any) -> list[dict[str, Any]]:
        """Every item of an ARM listing (a GET, or a POST action such as listEvents),
        following `nextLink` (a GET that carries its own query)."""
        page = self.call(method, url, **kwargs)
        items: list[dict[str, Any]] = page.get("value", [])
        while page.get("nextLink"):
            page = self.call("GET", page["nextLink"])
            items += page.get("value", [])
        return items

    def _follow(
        self,
        method: str,
        url: str,
        first: httpx.Response,
        watch: Callable[[httpx.Response], None] | None = None,
    ) -> httpx.Response:
        """ARM's asynchronous pattern: poll `Azure-AsyncOperation` until its `status` is
        terminal (then GET the resource), else `Location` until it stops answering 202."""
        async_url = first.headers.get("Azure-AsyncOperation")
        deadline = time.monotonic() + _LONGEST_WAIT_SECONDS
        waiting = f"waiting for the server to finish ({method} {url.rsplit('/', 1)[-1]})"
        with nullcontext() if watch else spinner(waiting):
            while time.monotonic() < deadline:
                time.sleep(_retry_after(first))
                if async_url:
                    status = self.request("GET", async_url)
                    state = status.json().get("status") if status.status_code == 200 else None
                    if status.status_code >= 400:
                        return status
                    if state in ("Succeeded", "Failed", "Canceled"):
                        if state != "Succeeded":
                            error = status.json().get("error") or {}
                            fail(f"the operation {state.lower()}: {error.get('message', '')}")
                        return self.request("GET", url) if method != "DELETE" else status
                    first = status
                else:
                    polled = self.request("GET", first.headers["Location"])
                    if polled.status_code != 202:
                        return polled
                    if watch is not None:
                        watch(polled)
                    first = polled
        fail(f"the server has not finished after {_LONGEST_WAIT_SECONDS:.0f} s; look again later")

    def _buy_token(self) -> str | None:
        """An identity token for the management audience, or None when there are no
        credentials to buy one with (the 401 then says what to do)."""
        stored = stored_login(self.server)
        if self._client is not None:
            form = {"grant_type": "client_credentials", "client_id": self._client[0]}
            form["client_secret"] = self._client[1]
        elif stored is not None and stored[0] == NULL_GUID:
            form = {"grant_type": "refresh_token", "refresh_token": stored[1]}
        elif stored is not None:
            form = {"grant_type": "client_credentials", "client_id": stored[0]}
            form["client_secret"] = stored[1]
        else:
            return None
        try:
            response = self._http.post(
                "/oauth2/v2.0/token", data={**form, "scope": MANAGEMENT_SCOPE}
            )
        except httpx.HTTPError as exc:
            fail(f"cannot reach {self.server}: {exc}")
        if response.status_code != 200:
            fail(explain(response, self.server))  # a 401's says how to log in as an identity
        return response.json()["access_token"]

    # -- placement ---------------------------------------------------------------------------

    def subscriptions(self) -> list[str]:
        """`--subscription`, else every subscription the server lists (its default
        first): registry names are unique on a server, so a name is looked for in all."""
        if self._subscriptions is None:
            if self._subscription is not None:
                self._subscriptions = [self._subscription]
            else:
                listed = self.values("/subscriptions")
                if not listed:
                    fail("the server lists no subscription; pass --subscription")
                self._subscriptions = [str(found["subscriptionId"]) for found in listed]
        return self._subscriptions

    @property
    def subscription(self) -> str:
        """Where new registries and server-wide role assignments go."""
        return self.subscriptions()[0]

    def group_url(self, resource_group: str) -> str:
        return (
            f"/subscriptions/{self.subscription}/resourceGroups/{resource_group}"
            f"/providers/{PROVIDER}/registries"
        )

    def registries(self) -> list[dict[str, Any]]:
        return [
            found
            for subscription in self.subscriptions()
            for found in self.values(
                f"/subscriptions/{subscription}/providers/{PROVIDER}/registries"
            )
        ]

    def registry(self, name: str) -> dict[str, Any]:
        """The registry named `name` (or whose login server it is), as the server shows
        it; its `id` is the base of every URL about it."""
        key = name.lower()
        if key not in self._registries:
            for found in self.registries():
                names = (found["name"].lower(), found["properties"]["loginServer"].lower())
                if key in names:
                    self._registries[key] = found
                    break
            else:
                where = (
                    "" if self._subscription is None else f" in subscription {self._subscription}"
                )
                fail(
                    f"no registry {name!r}{where} that you may read (dockyard registry list "
                    "shows them)"
                )
        return self._registries[key]

    def registry_url(self, name: str) -> str:
        return str(self.registry(name)["id"])

    def child_url(self, registry: str, kind: str, name: str | None = None) -> str:
        """A registry's `kind` of child resource (`webhooks`, `tokens`, ...), or the one
        `name`d."""
        base = f"{self.registry_url(registry)}/{kind}"
        return base if name is None else f"{base}/{name}"


def _operation_url(response: httpx.Response) -> str | None:
    return response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", _POLL_SECONDS)), 30.0)
    except ValueError:
        return _POLL_SECONDS


def explain(response: httpx.Response, server: str) -> str:
    """ARM's error (or the token service's) as one line, with what to do next."""
    try:
        body = response.json()
        error = body.get("error") or (body.get("errors") or [{}])[0]
        message = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    except (ValueError, AttributeError, IndexError):
        message = response.text.strip()[:200] or response.reason_phrase
    if response.status_code == 401:
        todo = (
            f"log in as an identity: dockyard login {server} -u CLIENT_ID -p SECRET, or pass "
            "--client-id/--client-secret"
        )
    elif response.status_code == 403 and "AuthorizationFailed" in message:
        todo = (
            "the identity lacks a control role here (Owner, Contributor or Reader); an Owner "
            "can give it one with dockyard role assignment create"
        )
    elif response.status_code == 404:
        todo = "not found: check the name (and --subscription)"
    else:
        todo = f"the server answered {response.status_code}"
    return f"{message} ({todo})"


@contextmanager
def spinner(text: str) -> Iterator[None]:
    """A Rich spinner on stderr while a verb waits, on a terminal only."""
    if not progress_console.is_terminal:
        yield
        return
    with progress_console.status(text):
        yield


def command(
    app: typer.Typer, name: str, **settings: Any
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register `function(api: Management, ...)` as `name`: the verb's own options, then
    the target options every online management verb shares (`--server`,
    `--subscription`, `--client-id`, `--client-secret`, `--insecure`, `--ca-file`)."""

    shared: dict[str, Any] = {
        "server": (ServerOption, None),
        "subscription": (SubscriptionOption, None),
        "client_id": (ClientIdOption, None),
        "client_secret": (ClientSecretOption, None),
        "insecure": (InsecureOption, False),
        "ca_file": (CAFileOption, None),
    }

    def register(function: Callable[..., None]) -> Callable[..., None]:
        hints = get_type_hints(function, include_extras=True)
        own = [
            inspect.Parameter(p.name, p.KEYWORD_ONLY, default=p.default, annotation=hints[p.name])
            for p in inspect.signature(function).parameters.values()
            if p.name != "api"
        ]
        extra = [
            inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
            for key, (a, d) in shared.items()
        ]

        @functools.wraps(function)
        def run(**kwargs: Any) -> None:
            target = {key: kwargs.pop(key) for key in shared}
            with Management(**target) as api:
                function(api, **kwargs)

        del run.__wrapped__  # Typer must read the signature below, not the function's
        run.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in [*own, *extra]}
        app.command(name, **settings)(run)
        return function

    return register
