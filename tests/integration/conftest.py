"""Integration fixtures: a real ``dockyard serve`` process on a loopback port, and clients.

Owns starting, crashing, restarting and stopping Dockyard server processes for tests, and
running skopeo against them. Every process started here is stopped here, by its own
process group id; only loopback addresses are ever contacted.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

# The modules in tests/ (images, endpoint, ...) are shared by every test tree.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from endpoint import RegistryEndpoint

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
SKOPEO_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def dockyard_command() -> list[str]:
    """The installed console script beside this interpreter, else ``python -m dockyard``."""
    script = Path(sys.executable).with_name("dockyard")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dockyard"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess:
    """The `dockyard` command in this process (Typer's CliRunner: no new interpreter), as
    a user runs it: the environment without the developer's DOCKYARD_* variables, `env`
    added, 200 columns. An exception the command lets out is its traceback on stderr and
    exit code 1, as the real process would print it."""
    from typer.testing import CliRunner

    from dockyard.cli.local import console
    from dockyard.cli.main import app

    # The CLI's console took its width from the COLUMNS of the process that imported it
    # (80 in a pytest-xdist worker), not from the command's environment.
    console.width = 200
    environment: dict[str, str | None] = {k: None for k in os.environ if k.startswith("DOCKYARD_")}
    environment.update(COLUMNS="200", **(env or {}))
    result = CliRunner().invoke(app, list(args), input=stdin, env=environment)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


class RegistryServer(RegistryEndpoint):
    """One Dockyard server process with its data directory, stderr log and port.

    ``start()`` launches ``dockyard serve`` in a new session (so that the server and any
    worker processes it forks form one process group) and waits for ``/healthz``.
    ``stop()`` ends that group gently, ``kill()`` with SIGKILL (a crash), and ``restart()``
    starts again on the same data directory and, when it is free, the same port.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        port: int | None = None,
        args: tuple[str, ...] = ("--no-auth",),
        env: dict[str, str] | None = None,
        tls: bool = False,
    ) -> None:
        """`args` go to `dockyard serve` (default: no logins, for the protocol tests);
        `env` adds environment variables (e.g. DOCKYARD_ADMIN_PASSWORD); `tls` serves
        HTTPS with the self-signed development certificate (`url` is then https and
        `ca_file` the certificate to trust)."""
        self.args = tuple(args)
        self.tls = tls
        self.env = dict(env or {})
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self._owner: tuple[str, str] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def ca_file(self) -> Path:
        """The development certificate `--tls self-signed` keeps in the data directory."""
        return self.data_dir / "tls" / "dockyard.crt"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's `verify` for this server: trust its certificate when it serves HTTPS."""
        return ssl.create_default_context(cafile=self.ca_file) if self.tls else True

    def __repr__(self) -> str:
        return f"RegistryServer({self.url}, data_dir={self.data_dir})"

    # -- process lifecycle -------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT) -> RegistryServer:
        self.launch()
        self._wait_healthy(timeout)
        return self

    def launch(self) -> RegistryServer:
        """Start the process and return at once, before it serves (`start` waits)."""
        if self.proc is not None and self.proc.poll() is None:
            raise RuntimeError(f"{self} is already running as pid {self.proc.pid}")
        if port_is_open(self.port):
            self.port = free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        cmd = [
            *dockyard_command(),
            "serve",
            "--listen",
            self.host,
            "--data-dir",
            str(self.data_dir),
            *self.args,
            *(("--tls", "self-signed") if self.tls else ()),
        ]
        # Settings come from DOCKYARD_* variables too: a developer's shell must not point a
        # test server at a real database or storage.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}
        env.update(self.env)
        with self.log_path.open("ab") as log:
            log.write(f"--- start #{self.starts}: {' '.join(cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=env,
                start_new_session=True,
            )
        return self

    def _wait_healthy(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                self.proc = None
                raise RuntimeError(
                    f"dockyard serve exited with {code} before /healthz answered\n"
                    f"{self.stderr_tail()}"
                )
            try:
                # A new client each time: a first HTTPS start makes its certificate late.
                response = httpx.get(f"{self.url}/healthz", timeout=1.0, verify=self.verify)
                if response.status_code == 200:
                    return
                last_error = f"/healthz answered {response.status_code}"
            except (httpx.HTTPError, FileNotFoundError) as exc:
                last_error = repr(exc)
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(
            f"dockyard serve not healthy after {timeout:.0f}s ({last_error})\n{self.stderr_tail()}"
        )

    def _signal_group(self, sig: int) -> None:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def _wait_port_closed(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while port_is_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> RegistryServer:
        """`with RegistryServer(...).start() as server:` stops it when the block ends."""
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM the server's process group, SIGKILL it after ``timeout``; its exit code."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        # Workers in the group outlive a main process that died alone: end them too.
        self._signal_group(signal.SIGKILL)
        self.proc = None
        self._wait_port_closed()
        return proc.returncode

    def kill(self) -> None:
        """Crash the server: SIGKILL its whole process group, no chance to clean up."""
        if self.proc is None:
            return
        self._signal_group(signal.SIGKILL)
        self.proc.wait(STOP_TIMEOUT)
        self.proc = None
        self._wait_port_closed()

    def restart(self, crash: bool = False, timeout: float = START_TIMEOUT) -> RegistryServer:
        """Stop (or, with ``crash=True``, SIGKILL) and start again on the same data dir."""
        if crash:
            self.kill()
        else:
            self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def admin(self, *args: str) -> str:
        """The `dockyard` CLI on this server's data directory, as an administrator runs it;
        its output (the command must succeed)."""
        result = run_cli(*args, "--data-dir", str(self.data_dir))
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def manage(self, *args: str, client: tuple[str, str] | None = None) -> str:
        """An online `dockyard` verb (registry, webhook, token, role assignment, ...)
        against this server's management API, as a user runs it; its output (the command
        must succeed). With logins on, as `client` (client id, secret), by default an
        identity made here once with the Owner role over the server."""
        result = self.manage_run(*args, client=client)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def manage_run(
        self, *args: str, client: tuple[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        """`manage`, successful or not."""
        env = {}
        if client is None and "--no-auth" not in self.args:
            client = self.owner()
        if client is not None:
            env.update(DOCKYARD_CLIENT_ID=client[0], DOCKYARD_CLIENT_SECRET=client[1])
        trust = ("--ca-file", str(self.ca_file)) if self.tls else ("--insecure",)
        return run_cli(*args, "--server", self.host, *trust, env=env)

    def owner(self) -> tuple[str, str]:
        """The client id and secret of an identity with Owner over the whole server, made
        on the server's database the first time (`dockyard identity create --server-role`)."""
        if self._owner is None:
            output = self.admin("identity", "create", "test-owner", "--server-role", "Owner")
            self._owner = (printed(output, "username"), printed(output, "secret"))
        return self._owner

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no server log)"
        tail = text.splitlines()[-lines:]
        return f"--- last {len(tail)} lines of {self.log_path}:\n" + "\n".join(tail)

    def request_log(self) -> list[dict]:
        """The server's JSON request log lines so far (non-JSON lines are skipped)."""
        entries = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries


def printed(output: str, name: str) -> str:
    """The value of a `name: value` line the CLI printed (a password, an id)."""
    for line in output.splitlines():
        if line.startswith(f"{name}: "):
            return line.split(": ", 1)[1].strip()
    raise AssertionError(f"no {name} in {output}")


def _start_server(base: Path) -> RegistryServer:
    base.mkdir(parents=True, exist_ok=True)
    return RegistryServer(base / "data", base / "dockyard.log").start()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One server per test module: tests share it, each using repositories of its own."""
    with _start_server(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture
def fresh_registry(tmp_path: Path) -> Iterator[RegistryServer]:
    """A server of the test's own, for tests that crash, restart or count things."""
    with _start_server(tmp_path / "registry") as server:
        yield server


@pytest.fixture
def http(registry: RegistryServer) -> Iterator[httpx.Client]:
    with registry.client() as client:
        yield client


class SkopeoError(AssertionError):
    pass


@pytest.fixture(scope="session")
def skopeo_bin() -> str:
    path = "/usr/bin/skopeo"
    if not Path(path).exists():
        raise RuntimeError("skopeo is not installed (Debian package 'skopeo')")
    return path


@pytest.fixture
def skopeo(skopeo_bin: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Run skopeo (no trust policy, no credentials, a private temp dir); fail on error.

    Returns the CompletedProcess; ``check=False`` returns it even when skopeo failed.
    """
    tmp = tmp_path / "skopeo-tmp"
    tmp.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp),
        "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
    }

    def run(*args: str, check: bool = True, timeout: float = SKOPEO_TIMEOUT):
        cmd = [skopeo_bin, "--insecure-policy", "--tmpdir", str(tmp), *args]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
        if check and result.returncode != 0:
            servers = [
                request.getfixturevalue(name)
                for name in ("registry", "fresh_registry")
                if name in request.fixturenames
            ]
            tails = "\n".join(s.stderr_tail() for s in servers)
            raise SkopeoError(
                f"{' '.join(cmd)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}\n{tails}"
            )
        return result

    return run


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the tail of each server's stderr to the report of a failed test."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        for name in ("registry", "fresh_registry"):
            server = funcargs.get(name)
            if isinstance(server, RegistryEndpoint):
                report.sections.append((f"dockyard stderr ({name})", server.stderr_tail()))
    return report
