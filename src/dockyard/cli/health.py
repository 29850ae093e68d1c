"""`dockyard check-health -n REGISTRY`, modelled on `az acr check-health`: what stands
between this machine and a running registry, checked in the order a client meets it
(name, connection, TLS, `/v2/`, token service, credentials, `/readyz`, clocks), each
failure with its fix. Public endpoints only; exits non-zero if any check fails."""

from __future__ import annotations

import socket
import ssl
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from pathlib import Path

import httpx
import typer
from rich.table import Table

from dockyard.cli.local import console
from dockyard.cli.remote import (
    CAFileOption,
    InsecureOption,
    NameOption,
    Output,
    OutputOption,
    PasswordOption,
    RegistryUnreachable,
    RemoteRegistry,
    UsernameOption,
    challenge,
    print_json,
    tls_context,
)

_CONNECT_SECONDS = 5.0
# Tokens carry issue and expiry times: beyond this, clients and server disagree on them.
_MAX_SKEW_SECONDS = 60


class Status(StrEnum):
    ok = "ok"
    warning = "warning"
    failed = "failed"
    skipped = "skipped"


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def _network(remote: RemoteRegistry, ca_file: Path | None) -> list[Check]:
    """DNS, TCP and TLS: what must work before any HTTP answer."""
    url = httpx.URL(f"{remote.scheme}://{remote.login_server}")
    host, port = url.host, url.port or (80 if remote.scheme == "http" else 443)
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return [
            Check("DNS lookup", Status.failed, f"{host}: {exc}", "check the name (DNS, /etc/hosts)")
        ]
    checks = [Check("DNS lookup", Status.ok, f"{host} resolves")]
    try:
        connection = socket.create_connection((host, port), timeout=_CONNECT_SECONDS)
    except OSError as exc:
        checks.append(
            Check(
                "connection",
                Status.failed,
                f"{host}:{port}: {exc}",
                "start `dockyard serve` there, or check the port and any firewall",
            )
        )
        return checks
    checks.append(Check("connection", Status.ok, f"{host}:{port} accepts connections"))
    with connection:
        if remote.scheme == "http":
            checks.append(Check("TLS certificate", Status.skipped, "plain HTTP (--insecure)"))
            return checks
        try:
            with tls_context(ca_file).wrap_socket(connection, server_hostname=host):
                checks.append(Check("TLS certificate", Status.ok, "trusted"))
        except ssl.SSLCertVerificationError as exc:
            checks.append(
                Check(
                    "TLS certificate",
                    Status.failed,
                    exc.verify_message or str(exc),
                    "pass --ca-file with the server's CA, or set SSL_CERT_FILE (`dockyard "
                    "serve --tls self-signed` keeps it in DATA_DIR/tls/dockyard.crt)",
                )
            )
        except (ssl.SSLError, OSError) as exc:
            checks.append(
                Check(
                    "TLS certificate",
                    Status.failed,
                    f"no TLS handshake: {exc}",
                    "a plain-HTTP development server needs --insecure",
                )
            )
    return checks


def _api(remote: RemoteRegistry) -> list[Check]:
    """`/v2/`, the token service its challenge names, credentials, `/readyz`, the clock."""
    base = remote.send("GET", "/v2/")
    version = base.headers.get("Docker-Distribution-API-Version")
    if base.status_code == 401 or (base.status_code == 200 and version == "registry/2.0"):
        # docker needs the version header on a 200; a 401 need only carry the challenge.
        checks = [Check("/v2/ API", Status.ok, f"answers {base.status_code}, {version or ''}")]
    else:
        checks = [
            Check(
                "/v2/ API",
                Status.failed,
                f"answered {base.status_code} with API version {version!r}",
                "the address is not a registry's: check --name (and any proxy in front)",
            )
        ]
    checks += _tokens(remote, base)
    ready = remote.send("GET", "/readyz")
    if ready.status_code == 200:
        checks.append(Check("/readyz", Status.ok, "database and storage usable"))
    else:
        checks.append(
            Check(
                "/readyz",
                Status.failed,
                f"{ready.status_code}: {ready.text.strip()[:200]}",
                "see the server's log: its database or blob storage is unavailable",
            )
        )
    checks.append(_clock(base))
    return checks


def _tokens(remote: RemoteRegistry, base: httpx.Response) -> list[Check]:
    asked = challenge(base)
    if base.status_code == 200:
        return [
            Check("token service", Status.skipped, "the registry asks for no login"),
            Check("credentials", Status.skipped, "the registry asks for no login"),
        ]
    if "realm" not in asked:
        return [
            Check(
                "token service",
                Status.failed,
                "401 without a Bearer challenge naming a realm",
                "check any proxy in front: it must pass WWW-Authenticate through",
            )
        ]
    realm, service = asked["realm"], asked.get("service", remote.login_server)
    try:
        anonymous = remote.send("GET", realm, params={"service": service})
    except RegistryUnreachable as exc:
        return [
            Check(
                "token service",
                Status.failed,
                str(exc),
                f"the realm {realm} must be reachable from here: check the server's "
                "login server and any proxy",
            )
        ]
    if anonymous.status_code not in (200, 401):
        return [
            Check(
                "token service",
                Status.failed,
                f"{realm} answered {anonymous.status_code}",
                "see the server's log",
            )
        ]
    checks = [Check("token service", Status.ok, f"{realm} answers")]
    if remote.credentials is None:
        checks.append(
            Check(
                "credentials",
                Status.warning,
                f"none given or stored for {remote.login_server} (anonymous)",
                f"run dockyard login {remote.login_server}",
            )
        )
        return checks
    granted = remote.token(realm, service, "registry:catalog:*")
    if granted.status_code == 200:
        checks.append(Check("credentials", Status.ok, f"valid for {remote.login_server}"))
    else:
        checks.append(
            Check(
                "credentials",
                Status.failed,
                f"refused ({granted.status_code})",
                remote.explain(granted),
            )
        )
    return checks


def _clock(response: httpx.Response) -> Check:
    try:
        server = parsedate_to_datetime(response.headers["Date"])
    except (KeyError, TypeError, ValueError):
        return Check("clock skew", Status.skipped, "the server sent no Date header")
    skew = (datetime.now(UTC) - server).total_seconds()
    if abs(skew) <= _MAX_SKEW_SECONDS:
        return Check("clock skew", Status.ok, f"{skew:+.0f} s against the server")
    return Check(
        "clock skew",
        Status.failed,
        f"this clock is {skew:+.0f} s off the server's",
        "synchronise both clocks (NTP): tokens are valid between times the server sets",
    )


def check_health(
    name: NameOption,
    output: OutputOption = Output.table,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """Check this machine's way to a registry, and the registry's health, as az acr
    check-health does; each failure comes with its fix."""
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        checks = _network(remote, ca_file)
        if all(check.status is not Status.failed for check in checks):
            try:
                checks += _api(remote)
            except RegistryUnreachable as exc:
                checks.append(Check("/v2/ API", Status.failed, str(exc), "see the server's log"))
    if output is Output.json:
        print_json([asdict(check) for check in checks])
    else:
        table = Table("check", "status", "detail", "fix")
        colour = {Status.ok: "green", Status.warning: "yellow", Status.failed: "red"}
        for check in checks:
            shown = f"[{colour.get(check.status, 'dim')}]{check.status}[/]"
            table.add_row(check.name, shown, check.detail, check.fix)
        console.print(table)
    if any(check.status is Status.failed for check in checks):
        raise typer.Exit(1)
