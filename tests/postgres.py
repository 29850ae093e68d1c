"""A real PostgreSQL server for tests: Debian's `postgresql` package, a cluster made by
`initdb` in a temporary directory, `postgres` on a free loopback port (its unix socket in
that directory too), stopped by its own process id.

Owns only the processes and files it makes. PostgreSQL refuses to run as root, so under
root the cluster belongs to the `postgres` user the package creates. Anything missing
raises: a test that needs PostgreSQL and cannot have it fails, never skips.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
SUPERUSER = "postgres"
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
    "shared_buffers": "64MB",
}
# Tests only: durability is not what they measure, and syncing costs seconds per run. A
# benchmark keeps PostgreSQL's durable defaults, as a deployment would.
_NOT_DURABLE = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    pass


def _binary(name: str) -> str:
    """Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<version>/bin."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    found = candidates[-1] if candidates else shutil.which(name)
    if found is None:
        raise PostgresUnavailable(
            f"{name} not found: install the Debian package `postgresql` (make install does)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster. `start()` makes and starts it, `create_database()` hands out
    empty (or migrated) databases, `stop()` shuts it down (fast shutdown) and removes its files.
    `durable=True` keeps PostgreSQL's own fsync and commit settings (for benchmarks)."""

    def __init__(self, durable: bool = False) -> None:
        self.settings = dict(_SETTINGS) if durable else {**_SETTINGS, **_NOT_DURABLE}
        self.root: Path | None = None
        self.port = 0
        self._migrated: str | None = None
        self.proc: subprocess.Popen | None = None
        self._databases = 0
        self._as_user: str | None = SUPERUSER if os.geteuid() == 0 else None

    @property
    def socket_dir(self) -> Path:
        assert self.root is not None
        return self.root / "socket"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def _run_as(self) -> dict:
        """Popen arguments that drop root for the `postgres` user (no wrapper process: the
        child's pid is the server's)."""
        if self._as_user is None:
            return {}
        return {"user": self._as_user, "group": self._as_user, "extra_groups": []}

    def start(self) -> PostgresServer:
        self._migrated = None  # a new cluster: its databases are made anew
        initdb = _binary("initdb")
        if self._as_user is not None:
            try:
                pwd.getpwnam(self._as_user)
            except KeyError as exc:
                raise PostgresUnavailable(
                    f"running as root and no `{self._as_user}` user to run PostgreSQL as "
                    "(the Debian package `postgresql` creates it)"
                ) from exc
        self.root = Path(tempfile.mkdtemp(prefix="dockyard-pg-"))
        data = self.root / "data"
        self.socket_dir.mkdir()
        if self._as_user is not None:
            for path in (self.root, self.socket_dir):
                shutil.chown(path, user=self._as_user, group=self._as_user)
        init = subprocess.run(
            [
                initdb,
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._run_as(),
        )
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        self.port = _free_port()
        self._launch()
        return self

    def _launch(self) -> None:
        assert self.root is not None
        data, postgres = self.root / "data", _binary("postgres")
        options = [f"-c{key}={value}" for key, value in self.settings.items()]
        log = open(self.root / "postgres.log", "ab")  # noqa: SIM115 - the server keeps it
        self.proc = subprocess.Popen(
            [
                postgres,
                "-D",
                str(data),
                "-p",
                str(self.port),
                f"-cunix_socket_directories={self.socket_dir}",
                *options,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            **self._run_as(),
        )
        log.close()
        self._wait_ready()

    def pause(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected) and keep its data,
        as an outage would; `resume()` starts it again on the same port."""
        proc, self.proc = self.proc, None
        assert proc is not None and proc.poll() is None
        os.kill(proc.pid, signal.SIGINT)
        proc.wait(STOP_TIMEOUT)

    def resume(self) -> None:
        assert self.proc is None and self.root is not None
        self._launch()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        last: Exception | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            try:
                with psycopg.connect(self._dsn(), connect_timeout=2):
                    return
            except psycopg.OperationalError as exc:
                last = exc
                time.sleep(0.05)
        log = (self.root / "postgres.log").read_text(errors="replace") if self.root else ""
        self.stop()
        raise PostgresUnavailable(f"PostgreSQL did not start ({last}):\n{log[-4000:]}")

    def create_database(self, prefix: str = "test", migrated: bool = False) -> str:
        """A new empty database, or (`migrated`) one at the schema's head: a copy of a
        database the migrations built once on this server, far cheaper than running
        them again. Returns its SQLAlchemy URL."""
        template = self._migrated_template() if migrated else "template0"
        self._databases += 1
        name = f"{prefix}_{self._databases}"
        with psycopg.connect(self._dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return self.url(name)

    def _migrated_template(self) -> str:
        if self._migrated is None:
            from dockyard.metadata import migrate
            from dockyard.metadata.engine import make_engine

            url = self.create_database("migrated_head")
            engine = make_engine(url)
            try:
                migrate.upgrade(engine)
            finally:
                engine.dispose()  # a template must have no connection
            self._migrated = url.rsplit("/", 1)[1]
        return self._migrated

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGINT)  # fast shutdown: disconnect clients, stop
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
