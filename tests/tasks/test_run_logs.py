"""Runs' logs after the run: moved into the registry's blob store (read from there by
every node), kept `[tasks] log_retention_days`, then pruned, bytes and row; a log file
that could not be stored is pruned on its node after as long."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from seaweedfs import REGION

from dockyard.metadata.tasks import RunWrites
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings


def a_run(services: Services) -> tuple[int, int, int]:
    registry = services.registries.for_host("localhost:5000")
    with services.meta.transaction() as tx:
        number = RunWrites(tx).add(registry.id, "QuickRun", {}, None, 600)
    run = services.runs.get(registry, f"ca{number}")
    return run.id, registry.id, number


def test_a_kept_log_is_read_from_the_blob_store_then_pruned(make_services) -> None:
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        tasks={"log_retention_days": 30},
    )
    logs = services.run_logs
    run_key, registry_id, number = a_run(services)
    logs.start(registry_id, number).write_bytes(b"line one\r\nline two\r\n")
    logs.keep(run_key, registry_id, number)

    assert not logs.path(registry_id, number).exists()
    assert logs.size(registry_id, number) == 20
    assert logs.read(registry_id, number, 10, 19) == b"line two\r\n"
    blobs = list((services.settings.blob_root / "dockyard").rglob("*"))
    assert any(p.is_file() and p.read_bytes().endswith(b"line two\r\n") for p in blobs)

    now = datetime.now(UTC)
    assert logs.prune(now + timedelta(days=29)) == 0
    assert logs.size(registry_id, number) == 20
    assert logs.prune(now + timedelta(days=31)) == 1
    assert logs.size(registry_id, number) is None
    blobs = list((services.settings.blob_root / "dockyard").rglob("*"))
    assert not any(p.is_file() and p.read_bytes().endswith(b"line two\r\n") for p in blobs)


def test_a_log_file_left_on_its_node_is_pruned_too(make_services) -> None:
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    logs = services.run_logs
    _, registry_id, number = a_run(services)
    path = logs.start(registry_id, number)
    assert logs.prune(datetime.now(UTC)) == 0 and path.exists()
    old = time.time() - 31 * 24 * 3600
    os.utime(path, (old, old))
    assert logs.prune(datetime.now(UTC)) == 1
    assert not path.exists() and logs.size(registry_id, number) is None


def test_another_node_reads_a_kept_log(make_services, seaweedfs, tmp_path: Path) -> None:
    """Two nodes on one database and one S3 bucket (a real SeaweedFS): the log a run
    left on the first is read whole by the second, which never had its file."""
    storage = {
        "kind": "s3",
        "endpoint": seaweedfs.endpoint,
        "bucket": seaweedfs.create_bucket("runlogs"),
        "region": REGION,
        "access_key": seaweedfs.access_key,
        "secret_key": seaweedfs.secret_key,
        "path_style": True,
    }
    registry = {"default_name": "dockyard", "login_server": "localhost:5000"}
    first: Services = make_services(auth={"enabled": False}, registry=registry, storage=storage)
    run_key, registry_id, number = a_run(first)
    first.run_logs.start(registry_id, number).write_bytes(b"built on the first node\r\n")
    first.run_logs.keep(run_key, registry_id, number)

    node = tmp_path / "second-node"
    node.mkdir()
    shutil.copy2(first.settings.secret_key_path, node / first.settings.secret_key_path.name)
    settings = load_settings(
        None,
        data_dir=node,
        metadata={"url": f"sqlite:///{first.settings.data_dir / 'dockyard.db'}"},
        auth={"enabled": False},
        registry=registry,
        storage=storage,
    )
    prepare(settings)
    second = build_services(settings)
    try:
        assert not second.run_logs.path(registry_id, number).exists()
        assert second.run_logs.size(registry_id, number) == 25
        assert second.run_logs.read(registry_id, number, 0, 24) == b"built on the first node\r\n"
    finally:
        second.close()
