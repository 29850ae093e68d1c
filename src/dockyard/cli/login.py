"""`dockyard login`: log in to a registry as `az acr login` does, leaving a refresh token
(user name = the null GUID) where docker, podman and skopeo read credentials, and
remembering the server (with `--insecure` and `--ca-file`) in `dockyard/login.json`
under `$XDG_CONFIG_HOME` (default `~/.config`) as the one the management verbs talk to,
as `az login` remembers its cloud."""

from __future__ import annotations

import base64
import json
import os
import ssl
from pathlib import Path
from typing import Annotated

import httpx
import typer

from dockyard.cli.local import console, fail

# The user name of a refresh-token login, docker's and ACR's convention (the server's
# `auth.principals.NULL_GUID`; the CLI speaks only the public protocol).
NULL_GUID = "00000000-0000-0000-0000-000000000000"


def _auth_files() -> list[Path]:
    """docker's config.json and the containers auth.json (podman, skopeo, buildah)."""
    docker = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "config.json"
    if "REGISTRY_AUTH_FILE" in os.environ:
        containers = Path(os.environ["REGISTRY_AUTH_FILE"])
    elif "XDG_RUNTIME_DIR" in os.environ:
        containers = Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json"
    else:
        containers = Path.home() / ".config" / "containers" / "auth.json"
    return [docker, containers]


def stored_login(server: str) -> tuple[str, str] | None:
    """The user name and password (a refresh token, after `dockyard login`) stored for
    `server`, from the first auth file that has them; None when none does."""
    for path in _auth_files():
        try:
            encoded = json.loads(path.read_text())["auths"][server]["auth"]
            username, _, password = base64.b64decode(encoded).decode().partition(":")
        except (OSError, ValueError, KeyError, TypeError):
            continue
        return username, password
    return None


def _profile() -> Path:
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "dockyard" / "login.json"


def remembered_server() -> dict | None:
    """`{"server", "insecure", "ca_file"}` of the last `dockyard login`, or None."""
    try:
        remembered = json.loads(_profile().read_text())
    except (OSError, ValueError):
        return None
    return remembered if isinstance(remembered, dict) and remembered.get("server") else None


def _remember(server: str, insecure: bool, ca_file: Path | None) -> None:
    path = _profile()
    path.parent.mkdir(parents=True, exist_ok=True)
    shown = {"server": server, "insecure": insecure, "ca_file": ca_file and str(ca_file.resolve())}
    path.write_text(json.dumps(shown, indent=2))


def _store(path: Path, server: str, username: str, password: str) -> None:
    config = json.loads(path.read_text()) if path.exists() else {}
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    config.setdefault("auths", {})[server] = {"auth": encoded}
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(path.name + ".tmp")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(config, out, indent=2)
    os.replace(draft, path)


def login(
    registry: Annotated[str, typer.Argument(help="Login server, e.g. localhost:5000.")],
    username: Annotated[str, typer.Option("--username", "-u", prompt=True)],
    password: Annotated[
        str,
        typer.Option("--password", "-p", prompt=True, hide_input=True, envvar="DOCKYARD_PASSWORD"),
    ],
    insecure: Annotated[
        bool, typer.Option(help="Plain HTTP (or TLS without verification) for dev servers.")
    ] = False,
    ca_file: Annotated[Path | None, typer.Option(help="CA certificate to trust.")] = None,
) -> None:
    """Log in and store a refresh token for docker, podman and skopeo.

    Logged in as an identity (-u CLIENT_ID -p SECRET), the same refresh token serves the
    management verbs (registry, webhook, token, role assignment, ...), which talk to the
    server logged in to last unless given --server, as `az login` serves `az acr`.
    """
    scheme = "http" if insecure else "https"
    verify: bool | ssl.SSLContext = (
        ssl.create_default_context(cafile=ca_file) if ca_file else not insecure
    )
    try:
        response = httpx.post(
            f"{scheme}://{registry}/oauth2/token",
            data={
                "grant_type": "password",
                "service": registry,
                "username": username,
                "password": password,
                "access_type": "offline",
            },
            verify=verify,
            timeout=30,
        )
    except httpx.HTTPError as exc:
        fail(
            f"cannot reach {registry}: {exc}; is the server running "
            f"({'drop --insecure for HTTPS' if insecure else 'try --insecure for HTTP'})?"
        )
        return
    if response.status_code != 200:
        try:
            message = response.json()["errors"][0]["message"]
        except (ValueError, KeyError, IndexError):
            message = response.text[:200]
        fail(f"login refused ({response.status_code}): {message}")
    refresh = response.json().get("refresh_token")
    if not refresh:
        fail("the server gave no refresh token")
    service = registry
    for path in _auth_files():
        _store(path, service, NULL_GUID, refresh)
        console.print(f"credentials stored in {path}")
    _remember(registry, insecure, ca_file)
    console.print(f"Login Succeeded ({registry}; valid until the refresh token expires)")
