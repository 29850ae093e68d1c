"""A running registry as the online `dockyard` verbs see it: its public HTTP APIs only
(`/v2/`, `/acr/v1/`, `/oauth2/token`), reached as `az acr` reaches ACR. Owns the target
options (`--name`, credentials, `--insecure`, `--ca-file`), the docker token flow, `Link`
pages and turning the server's error JSON into one line that says what to do. Never
opens the server's database or files."""

from __future__ import annotations

import json
import re
import ssl
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from dockyard.cli.local import fail
from dockyard.cli.login import stored_login

NameOption = Annotated[
    str,
    typer.Option(
        "--name",
        "-n",
        help="Login server of the registry, e.g. localhost:5000.",
        show_default=False,
    ),
]
UsernameOption = Annotated[
    str | None,
    typer.Option("--username", "-u", help="User name (default: what `dockyard login` stored)."),
]
PasswordOption = Annotated[
    str | None,
    typer.Option("--password", "-p", envvar="DOCKYARD_PASSWORD", help="Password or token."),
]
InsecureOption = Annotated[
    bool, typer.Option(help="Plain HTTP, as `dockyard login --insecure`, for dev servers.")
]
CAFileOption = Annotated[
    Path | None,
    typer.Option(help="CA certificate to trust (default: the system's, or SSL_CERT_FILE)."),
]


class Output(StrEnum):
    table = "table"
    json = "json"


class Switch(StrEnum):
    """az's `--write-enabled true|false`: a value, not a bare flag."""

    true = "true"
    false = "false"


OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts.")
]

_TIMEOUT = 30.0
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryUnreachable(Exception):
    """No HTTP answer at all: name, connection or TLS trouble."""


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trust store (OpenSSL honours SSL_CERT_FILE), or `ca_file` alone."""
    return ssl.create_default_context(cafile=ca_file)


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of a `WWW-Authenticate: Bearer realm=...,service=...` header."""
    header = response.headers.get("WWW-Authenticate", "")
    kind, _, rest = header.partition(" ")
    return dict(_CHALLENGE_PARAM.findall(rest)) if kind.lower() == "bearer" else {}


class RemoteRegistry:
    """One registry through its public APIs, as one caller. Credentials are `--username`
    and `--password`, else what `dockyard login` stored, else none (anonymous). A token is
    bought once per scope, after the first 401's challenge names the token service."""

    def __init__(
        self,
        login_server: str,
        username: str | None = None,
        password: str | None = None,
        insecure: bool = False,
        ca_file: Path | None = None,
    ) -> None:
        self.login_server = login_server
        self.credentials = (username, password or "") if username else stored_login(login_server)
        self.scheme = "http" if insecure else "https"
        self._http = httpx.Client(
            base_url=f"{self.scheme}://{login_server}",
            verify=tls_context(ca_file),
            timeout=_TIMEOUT,
        )
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self._http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with no credentials; connection trouble as `RegistryUnreachable`."""
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(self._unreachable(exc)) from None

    def _unreachable(self, exc: httpx.HTTPError) -> str:
        if isinstance(exc.__cause__ or exc.__context__, ssl.SSLCertVerificationError) or (
            "CERTIFICATE_VERIFY_FAILED" in str(exc)
        ):
            return (
                f"the certificate of {self.login_server} is not trusted ({exc}); pass "
                "--ca-file with its CA or set SSL_CERT_FILE"
            )
        hint = "drop --insecure for HTTPS" if self.scheme == "http" else "try --insecure for HTTP"
        return f"cannot reach {self.login_server}: {exc}; is the server running ({hint})?"

    def token(self, realm: str, service: str, scope: str) -> httpx.Response:
        """docker's token request: a GET on the realm with Basic credentials, if any."""
        auth = httpx.BasicAuth(*self.credentials) if self.credentials else None
        try:
            return self._http.get(realm, params={"service": service, "scope": scope}, auth=auth)
        except httpx.HTTPError as exc:
            raise RegistryUnreachable(self._unreachable(exc)) from None

    def request(self, method: str, path: str, scope: str, **kwargs: Any) -> httpx.Response:
        """`path` with a token for `scope` (bought on the first 401 and kept)."""
        bearer = self._tokens.get(scope)
        headers = dict(kwargs.pop("headers", None) or {})
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = self.send(method, path, headers=headers, **kwargs)
        asked = challenge(response)
        if response.status_code != 401 or bearer or "realm" not in asked:
            return response
        granted = self.token(asked["realm"], asked.get("service", self.login_server), scope)
        if granted.status_code != 200:
            return granted
        self._tokens[scope] = granted.json()["token"]
        return self.request(method, path, scope, headers=headers, **kwargs)

    def call(self, method: str, path: str, scope: str, **kwargs: Any) -> httpx.Response:
        """`request`, ending the command with one line when the server refuses."""
        try:
            response = self.request(method, path, scope, **kwargs)
        except RegistryUnreachable as exc:
            fail(str(exc))
        if response.status_code >= 400:
            fail(self.explain(response))
        return response

    def pages(self, path: str, key: str, scope: str, params: dict, top: int | None) -> list:
        """Every item of a listing, following `Link` headers, at most `top` of them."""
        items: list = []
        url: str | None = path
        if top is not None:
            params = {**params, "n": top}
        while url is not None and (top is None or len(items) < top):
            response = self.call("GET", url, scope, params=params if url == path else None)
            items += response.json()[key]
            link = response.headers.get("Link")
            url = link[1 : link.index(">")] if link else None
        return items[:top] if top is not None else items

    def explain(self, response: httpx.Response) -> str:
        """The server's error message, and what to do about it."""
        try:
            message = response.json()["errors"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            message = response.text.strip()[:200] or response.reason_phrase
        if response.status_code == 401:
            if self.credentials:
                todo = f"check the credentials, or run dockyard login {self.login_server}"
            else:
                todo = f"run dockyard login {self.login_server}, or pass --username/--password"
        elif response.status_code == 403:
            todo = "the identity lacks permission, or a lock or network rule refuses it"
        elif response.status_code == 404:
            todo = "not found: check the repository, tag or digest"
        else:
            todo = f"the server answered {response.status_code}"
        return f"{message} ({todo})"

    def __enter__(self) -> RemoteRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def print_json(value: Any) -> None:
    """What the server returned, as `az` prints it: indented JSON on stdout."""
    typer.echo(json.dumps(value, indent=2))


def locks(attributes: dict[str, bool]) -> str:
    """The changeable attributes set to false (`write, delete`), for a table column."""
    return ", ".join(
        key.removesuffix("Enabled")
        for key, value in attributes.items()
        if key != "teleportEnabled" and value is False
    )
