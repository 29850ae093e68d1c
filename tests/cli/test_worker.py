"""`dockyard worker` as a process of its own: it says what it runs, sweeps expired
uploads and drains the outbox for the features' consumers (a test feature's here), and
stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from dockyard.core.events import ManifestDeleted, TagMoved
from dockyard.metadata import migrate
from dockyard.metadata.engine import make_engine
from dockyard.metadata.store import Metadata
from dockyard.server import prepare
from dockyard.settings import load_settings

# `dockyard worker` with one more feature, whose consumer appends "<id> <action>" of
# each event it is handed to the file in $EVENTS_OUT.
WORKER = """
import os, sys
from dockyard import features
from dockyard.events import Consumer
from dockyard.feature import Feature

def handle(stored):
    with open(os.environ["EVENTS_OUT"], "a") as out:
        out.write(f"{stored.id} {stored.event.ACTION}\\n")

test = Feature("test", consumers=lambda services: [Consumer("test", handle)])
features.FEATURES = (*features.FEATURES, test)
from dockyard.cli.main import app
app(sys.argv[1:], prog_name="dockyard")
"""


def _start(data_dir: Path, out: Path, log: Path, *args: str, **settings: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "EVENTS_OUT": str(out),
        "DOCKYARD_UPLOADS__SWEEP_SECONDS": "1",
        "DOCKYARD_UPLOADS__EXPIRY_SECONDS": "3600",
        **settings,
    }
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, "worker", "--data-dir", str(data_dir), *args],
            env=env,
            stdout=stderr,
            stderr=subprocess.STDOUT,
        )


def _wait(condition, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


DIGEST = "sha256:" + "a" * 64


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    prepare(load_settings(None, data_dir=tmp_path / "data", auth={"enabled": False}))
    return tmp_path / "data"


def test_worker_drains_the_outbox_and_sweeps_uploads(data_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=data_dir)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    meta = Metadata(settings.database_url, lambda: long_ago)
    [registry] = meta.registries()
    with meta.transaction() as tx:
        tx.create_upload("00000000-0000-0000-0000-00000000abcd", registry.id, "library/app")
        app = {"registry_id": registry.id, "repository": "library/app", "digest": DIGEST}
        tx.emit(*TagMoved(**app, size=2, tag="1").to_row())
        tx.emit(*ManifestDeleted(**app, tags=("1",)).to_row())
    out, log = tmp_path / "events.txt", tmp_path / "worker.log"
    worker = _start(data_dir, out, log)
    try:
        assert _wait(lambda: out.exists() and len(out.read_text().splitlines()) >= 2), (
            log.read_text()
        )
        assert _wait(lambda: meta.upload_ids() == set()), log.read_text()
        time.sleep(1.5)  # a delivered event is never handed out again
        assert out.read_text().split("\n")[:2] == ["1 push", "2 delete"]
        assert len(out.read_text().splitlines()) == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(20)
        meta.close()
    assert code == 0, log.read_text()
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [started] = [line for line in lines if line["msg"] == "worker started"]
    assert "test" in started["features"]
    # What it runs, named: the kernel's loops, then each feature's jobs.
    assert started["runs"] == [
        "upload sweep",
        "garbage collection",
        "outbox: audit, scanning, task-base-images, test",
        "tiers: record_storage_history",
        "audit: prune_audit_log",
        "webhooks: Dispatcher.run",
        "lifecycle: apply_lifecycle",
        "encryption: encrypt_registries",
        "scanning: rescan_after_imports",
        "scanning: stop_with_the_background",
        "tasks: Runner.run",
        "tasks: TaskTimers.run",
        "tasks: BaseImageTriggers.run",
        "tasks: prune_logs",
    ]
    assert any(line["msg"] == "worker stopped" for line in lines)


def test_worker_refuses_a_database_behind_the_code(tmp_path: Path, postgres) -> None:  # type: ignore[no-untyped-def]
    url = postgres.create_database("worker")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dockyard",
            "worker",
            "--data-dir",
            str(tmp_path),
            "--database-url",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "run `dockyard db upgrade`" in result.stderr


def test_a_worker_on_postgresql_is_woken_by_an_event_rather_than_its_poll(
    tmp_path: Path, postgres
) -> None:  # type: ignore[no-untyped-def]
    """Its idle sleeps last ten minutes here: the event is handled because its commit
    was announced."""
    url = postgres.create_database("wakeup")
    data_dir = tmp_path / "data"
    migrate.upgrade(make_engine(url))
    prepare(load_settings(None, data_dir=data_dir, metadata={"url": url}))
    out, log = tmp_path / "events.txt", tmp_path / "worker.log"
    idle = {"DOCKYARD_OUTBOX__POLL_SECONDS": "600", "DOCKYARD_OUTBOX__IDLE_SECONDS": "600"}
    worker = _start(data_dir, out, log, "--database-url", url, **idle)
    meta = Metadata(url, lambda: datetime.now(UTC))
    try:
        assert _wait(lambda: "listening for outbox announcements" in log.read_text()), (
            log.read_text()
        )
        [registry] = meta.registries()
        app = {"registry_id": registry.id, "repository": "library/app", "digest": DIGEST}
        with meta.transaction() as tx:
            tx.emit(*TagMoved(**app, size=2, tag="1").to_row())
        assert _wait(lambda: out.exists() and out.read_text() == "1 push\n"), log.read_text()
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(20)
        meta.close()
    assert code == 0, log.read_text()
