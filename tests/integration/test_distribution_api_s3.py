"""Every test of `test_distribution_api.py`, against a server whose blobs live in an
S3 bucket (a real SeaweedFS): the same raw HTTP, the same expected answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import RegistryServer
from test_distribution_api import *  # noqa: F403  (the tests to run again)


@pytest.fixture(scope="module")
def registry(seaweedfs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """One server per module, as in conftest, on its own bucket."""
    bucket = seaweedfs.create_bucket("distribution")
    base = tmp_path_factory.mktemp("registry-s3")
    with RegistryServer(
        base / "data", base / "dockyard.log", args=("--no-auth", *seaweedfs.serve_args(bucket))
    ).start() as server:
        yield server
    assert not (base / "data" / "blobs").exists(), "the server stored blobs on disk"
    stored = seaweedfs.client().list_objects_v2(Bucket=bucket, Prefix="dockyard/blobs/")
    assert stored.get("KeyCount", 0) > 0, "no blob reached the bucket"
