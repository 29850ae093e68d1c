"""Running the server: prepare the database and default registry once, then hand the
ASGI app to granian, which builds one app per worker process via `asgi_app`."""

from __future__ import annotations

import ctypes
import gc
import ipaddress
import logging
import multiprocessing
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import orjson
from granian import Granian
from granian.constants import Interfaces, Loops, SSLProtocols
from granian.log import LogLevels
from pydantic import BaseModel, SecretStr

from dockyard.api.metrics import prepare_directory
from dockyard.app import create_app
from dockyard.auth.secret_box import SealedWithAnotherKey
from dockyard.logs import configure_logging
from dockyard.metadata import migrate
from dockyard.metadata.access import AccessStore
from dockyard.metadata.engine import make_engine
from dockyard.metadata.records import RegistryRecord
from dockyard.services import Services, build_services
from dockyard.settings import Settings
from dockyard.tls import ensure_development_certificate, hosts_to_cover, trust_instructions

_SETTINGS_ENV = "DOCKYARD_RESOLVED_SETTINGS"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
log = logging.getLogger("dockyard")


class SchemaOutdated(RuntimeError):
    pass


class CertificateUnusable(RuntimeError):
    pass


class SecretKeyNotShared(RuntimeError):
    pass


def ensure_schema(settings: Settings) -> None:
    """Migrate an embedded (SQLite) database to the code's schema; refuse an external
    one that is behind, naming the command that upgrades it."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        if not migrate.is_current(engine):
            if engine.dialect.name != "sqlite":
                current = migrate.current_revision(engine)
                found = "has no schema yet" if current is None else f"schema is at {current}"
                raise SchemaOutdated(
                    f"the database {found}, this version needs {migrate.head_revision()}: "
                    "run `dockyard db upgrade` with the same configuration first"
                )
            migrate.upgrade(engine)
    finally:
        engine.dispose()


def prepare(settings: Settings) -> None:
    """Bring an embedded database up to date (an external one must be upgraded on
    purpose, with `dockyard db upgrade`) and make sure the default registry exists."""
    ensure_schema(settings)
    services = build_services(settings)
    try:
        registry = services.registries.ensure_default(
            settings.default_login_server, settings.registry.default_sku
        )
        _open_signing_keys(settings, services)
        _bootstrap_access(settings, services, registry)
        log.info(
            "registry ready",
            extra={
                "fields": {
                    "registry": registry.name,
                    "login_server": registry.login_server,
                    "data_dir": str(settings.data_dir.resolve()),
                }
            },
        )
    finally:
        services.close()


def _open_signing_keys(settings: Settings, services: Services) -> None:
    """Open the token signing keys, or make the first one here, before workers could
    race. A node whose secret key is not the one that sealed them cannot sign or check
    a token: it refuses to start, saying why, rather than fail every login later."""
    try:
        services.keys.signing_key()
    except SealedWithAnotherKey:
        raise SecretKeyNotShared(
            f"the secret key {settings.secret_key_path} did not seal this database's "
            "signing keys: every node needs the same secret key; copy the first node's "
            "(DATA_DIR/secret.key) or point --secret-key-file (auth.secret_key_file) at it"
        ) from None


def _bootstrap_access(settings: Settings, services: Services, registry: RegistryRecord) -> None:
    """Make sure someone can log in: the admin password from the settings (scripts, CI),
    or, on a registry nobody can log in to yet, a generated one written to a file only
    the owner can read."""
    if not settings.auth.enabled:
        log.warning(
            "authentication is off: anyone who can reach the server may push, pull "
            "and delete; start without --no-auth to require logins"
        )
        return
    admin = services.administration
    if settings.admin_password is not None:
        admin.set_admin_user(registry, True, settings.admin_password.get_secret_value())
        log.info(f"admin user: {registry.name}")
        return
    store = AccessStore(services.meta)
    if (
        store.admin_user_enabled(registry.id)
        or store.tokens(registry.id)
        or store.role_assignments(registry.id)
    ):
        return
    credentials = admin.set_admin_user(registry, True)
    assert credentials is not None
    path = settings.data_dir / "admin-password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(credentials.passwords["password"] + "\n")
    log.info(
        f"admin user: {registry.name}; its password is in {path.resolve()} "
        f"(also: dockyard credential show -n {registry.name})"
    )


def _settings_for_workers(settings: Settings) -> str:
    """The settings as JSON for the worker processes, every secret in clear (JSON masks
    `SecretStr`, and a worker comparing a peer credential or unlocking a PKCS#11 token
    with `**********` fails): the S3 secret key, the metrics token, the peer credential,
    the PKCS#11 PIN, whatever secret a setting gains later."""
    data = settings.model_dump(mode="json")
    _reveal(settings, data)
    return orjson.dumps(data).decode()


def _reveal(model: BaseModel, data: dict[str, Any]) -> None:
    """Put back into `data` (`model`'s JSON dump) the values of its secrets, nested
    models and lists of models included."""
    for name, value in model:
        if isinstance(value, SecretStr):
            data[name] = value.get_secret_value()
        elif isinstance(value, BaseModel):
            _reveal(value, data[name])
        elif isinstance(value, list):
            for item, dumped in zip(value, data[name], strict=True):
                if isinstance(item, BaseModel):
                    _reveal(item, dumped)


def serve(settings: Settings) -> None:
    configure_logging(settings.server.log_level)
    prepare(settings)
    host, port = _address(settings.server.listen)
    certificate = server_certificate(settings)
    os.environ[_SETTINGS_ENV] = _settings_for_workers(settings)
    if settings.metrics.enabled:
        prepare_directory(settings.data_dir / "metrics")
    log.info(
        "listening",
        extra={
            "fields": {
                "listen": settings.server.listen,
                "workers": settings.server.workers,
                "tls": certificate is not None,
            }
        },
    )
    tls: dict = {}
    if certificate is not None:
        # TLS 1.0 and 1.1 are refused: every registry client speaks 1.2.
        tls = {
            "ssl_cert": certificate[0],
            "ssl_key": certificate[1],
            "ssl_protocol_min": SSLProtocols.tls12,
        }
    Granian(
        "dockyard.server:asgi_app",
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=settings.server.workers,
        # Also ends a worker that missed the SIGTERM (granian can lose one sent while it
        # starts its workers), instead of waiting for it for ever.
        workers_kill_timeout=settings.server.stop_timeout_seconds,
        loop=Loops.uvloop,
        log_level=LogLevels.warning,
        backlog=2048,
        **tls,
    ).serve()


def server_certificate(settings: Settings) -> tuple[Path, Path] | None:
    """The certificate and key files to serve HTTPS with, or None for plain HTTP."""
    if settings.tls.self_signed:
        login_server = settings.default_login_server
        cert = ensure_development_certificate(
            settings.data_dir / "tls", hosts_to_cover(settings.server.listen, login_server)
        )
        log.info(
            "self-signed development certificate "
            + ("made" if cert.created else "reused")
            + "; clients must be told to trust it (see the lines below)",
            extra={"fields": {"cert_file": str(cert.cert_file.resolve()), "hosts": cert.hosts}},
        )
        print(trust_instructions(cert, login_server), file=sys.stderr, flush=True)
        return cert.cert_file, cert.key_file
    if settings.tls.cert_file is None or settings.tls.key_file is None:
        return None
    for path in (settings.tls.cert_file, settings.tls.key_file):
        if not os.access(path, os.R_OK):
            raise CertificateUnusable(f"cannot read {path} (tls.cert_file / tls.key_file)")
    return settings.tls.cert_file, settings.tls.key_file


def _address(listen: str) -> tuple[str, int]:
    """HOST:PORT to the IP address and port granian binds (it takes no host names)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        host = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][4][0]
    return host, int(port)


def asgi_app():  # type: ignore[no-untyped-def]
    """Granian's factory, called in each worker process with the settings `serve` resolved."""
    _end_with_main_process()
    settings = Settings.model_validate(orjson.loads(os.environ[_SETTINGS_ENV]))
    configure_logging(settings.server.log_level)
    app = create_app(build_services(settings))
    # What exists now (modules, SQLAlchemy's and pydantic's structures, the app) lives as
    # long as the process: out of the collector's sight, a full collection scans only
    # what requests left behind, not 100,000 objects at 50-100 ms a time.
    gc.collect()
    gc.freeze()
    return app


def _end_with_main_process() -> None:
    """Have Linux send this worker SIGTERM when granian's main process dies. Granian
    (2.8) does not: a main process killed with SIGKILL (the OOM killer, a crash) left its
    workers under PID 1, still answering on the port, and a restarted server then served
    beside them, each generation with its own background work. SIGTERM is what a normal
    stop sends a worker: it stops accepting, finishes the requests in flight and runs the
    app's shutdown (the buffered audit rows are written).

    Until granian installs the worker's own handler, SIGTERM would reach the main
    process's handler the fork copied, and be lost: a worker still starting ends at
    once instead (the default action). A main process that died before this worker got
    here cannot signal it any more: it ends too."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        log.warning(
            "workers will outlive a killed main process",
            extra={"fields": {"error": os.strerror(ctypes.get_errno())}},
        )
    if os.getppid() != parent.pid:
        raise SystemExit("dockyard serve: the main process is gone")
