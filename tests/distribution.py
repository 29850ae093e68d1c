"""A real CNCF Distribution registry for tests: Debian's `docker-registry` package
(Distribution 2.8), with a configuration and storage of its own in a temporary directory,
on a free loopback port; optionally behind its htpasswd login (a bcrypt file made with
`htpasswd -B`, Debian's apache2-utils), which answers 401 with a Basic challenge.

Owns only the process and files it makes; stopped by its own process id. Anything
missing raises: a test that needs Distribution and cannot have it fails, never skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx

BINARY = "/usr/bin/docker-registry"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
{auth}"""
_HTPASSWD = """\
auth:
  htpasswd:
    realm: distribution-tests
    path: {path}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Distribution:
    """One `docker-registry serve` process. `login` (user, password) turns on htpasswd."""

    def __init__(self, root: Path, login: tuple[str, str] | None = None) -> None:
        if not Path(BINARY).exists():
            raise RuntimeError("docker-registry is not installed (Debian package)")
        self.root = Path(root)
        self.login = login
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Distribution:
        self.root.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.login is not None:
            if shutil.which("htpasswd") is None:
                raise RuntimeError("htpasswd is not installed (Debian package apache2-utils)")
            path = self.root / "htpasswd"
            subprocess.run(
                ["htpasswd", "-Bbc", str(path), *self.login], check=True, capture_output=True
            )
            auth = _HTPASSWD.format(path=path)
        config = self.root / "config.yml"
        config.write_text(_CONFIG.format(root=self.root, port=self.port, auth=auth))
        with (self.root / "registry.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [BINARY, "serve", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{self.host}/v2/", timeout=1.0).status_code in (200, 401):
                    return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer: {self.log_tail()}")

    def push(self, layout: Path, tag: str, reference: str) -> None:
        """Copy `tag` of an OCI layout (every platform) to `reference` (REPO:TAG) here,
        with skopeo, logging in when the registry wants a login."""
        login = ("--dest-creds", ":".join(self.login)) if self.login else ()
        tmp = self.root / "skopeo-tmp"
        tmp.mkdir(exist_ok=True)
        subprocess.run(
            [
                "/usr/bin/skopeo",
                "--insecure-policy",
                "copy",
                "--all",
                "--preserve-digests",
                "--dest-tls-verify=false",
                *login,
                f"oci:{layout}:{tag}",
                f"docker://{self.host}/{reference}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp), "TMPDIR": str(tmp)},
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(STOP_TIMEOUT)
        self.proc = None

    def log_tail(self, lines: int = 20) -> str:
        path = self.root / "registry.log"
        text = path.read_text(errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])
