"""A real server with a registry's encryption on: skopeo pushes to it and pulls from it
with nothing stored in plaintext; and a server SIGKILLed while its background round
encrypts blobs stored in plaintext before encryption was turned on, or rewrites them
under a new data key, loses nothing: right after its restart every blob pulls
byte-identical, half converted or not, and the next rounds finish the work, leaving no
plaintext blob (or no blob under the old key) behind."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer

from dockyard.encryption.local_keys import LocalKeyProvider

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REGISTRY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers"
    "/Microsoft.ContainerRegistry/registries/dockyard"
)
LAYERS, LAYER = 48, 4 << 20
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


def files(root: Path, algorithm: str) -> int:
    return sum(1 for path in root.glob(f"blobs/*/blobs/{algorithm}/*/*") if path.is_file())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RegistryServer]:
    with RegistryServer(
        tmp_path / "data",
        tmp_path / "dockyard.log",
        args=("--no-auth", "--workers", "1"),
        env={"DOCKYARD_ENCRYPTION__INTERVAL_SECONDS": "1"},
    ).start() as running:
        yield running


def enable(server: RegistryServer) -> None:
    """The default registry's encryption on, with the key file `local:kek`."""
    enabled = httpx.patch(
        f"{server.url}{REGISTRY}",
        params={"api-version": "2025-11-01"},
        json={"properties": {"encryption": {"status": "enabled",
              "keyVaultProperties": {"keyIdentifier": "local:kek"}}}},
    )  # fmt: skip
    assert enabled.status_code == 200, enabled.text


def key_ids(root: Path) -> list[str]:
    """The data key id in each encrypted blob's header (format v1: magic, version, the
    id's length, the id)."""
    ids = []
    for path in root.glob("blobs/*/blobs/sha256.aes256gcm/*/*"):
        with path.open("rb") as stored:
            header = stored.read(6 + 64)
        ids.append(header[6 : 6 + header[5]].decode())
    return ids


def pulled_intact(server: RegistryServer, digests: list[str]) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for digest in digests:
            answer = http.get(f"/v2/app/layers/blobs/{digest}")
            assert answer.status_code == 200, answer.text
            assert "sha256:" + hashlib.sha256(answer.content).hexdigest() == digest


def test_a_kill_during_background_encryption_loses_nothing(server: RegistryServer) -> None:
    digests = [server.push_blob("app/layers", os.urandom(LAYER)) for _ in range(LAYERS)]
    data = server.data_dir
    assert files(data, "sha256") == LAYERS
    LocalKeyProvider(data / "keys").create_key("kek")
    enable(server)
    deadline = time.monotonic() + 60
    while not files(data, "sha256.aes256gcm"):  # the round has begun
        assert time.monotonic() < deadline, server.stderr_tail()
        time.sleep(0.005)
    server.kill()
    # During the round: some plaintext left (all of it, if the first copy was written
    # but its plaintext not yet deleted: the state with both copies).
    assert files(data, "sha256") > 0, "the kill came after the round, not during it"
    server.start()
    pulled_intact(server, digests)  # half converted
    deadline = time.monotonic() + 60
    while files(data, "sha256"):  # the next rounds finish the work
        assert time.monotonic() < deadline, server.stderr_tail()
        time.sleep(0.2)
    assert files(data, "sha256.aes256gcm") == LAYERS
    pulled_intact(server, digests)


def test_a_kill_while_blobs_move_to_a_new_data_key_loses_nothing(
    server: RegistryServer,
) -> None:
    data = server.data_dir
    LocalKeyProvider(data / "keys").create_key("kek")
    enable(server)
    digests = [server.push_blob("app/layers", os.urandom(LAYER)) for _ in range(LAYERS)]
    (first,) = set(key_ids(data))
    second = server.admin("key", "new-data-key").strip()
    deadline = time.monotonic() + 60
    while second not in key_ids(data):  # the round has begun
        assert time.monotonic() < deadline, server.stderr_tail()
        time.sleep(0.005)
    server.kill()
    assert first in key_ids(data), "the kill came after the round, not during it"
    server.start()
    pulled_intact(server, digests)  # half rewritten
    deadline = time.monotonic() + 60
    while set(key_ids(data)) != {second}:  # the next rounds finish the work
        assert time.monotonic() < deadline, server.stderr_tail()
        time.sleep(0.2)
    assert len(key_ids(data)) == LAYERS and files(data, "sha256") == 0
    pulled_intact(server, digests)


def test_skopeo_pushes_to_and_pulls_from_an_encrypted_registry(
    server: RegistryServer, skopeo, tmp_path: Path
) -> None:
    LocalKeyProvider(server.data_dir / "keys").create_key("kek")
    enable(server)
    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    dest = f"docker://{server.host}/app/busybox:1.0"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", dest)
    assert files(server.data_dir, "sha256") == 0  # every blob stored encrypted
    layers = [data for data in image.blobs.values() if len(data) > 64]
    for path in server.data_dir.glob("blobs/*/blobs/*/*/*"):
        stored = path.read_bytes()
        assert not any(layer[:64] in stored for layer in layers), path
    back = tmp_path / "back"
    skopeo("copy", *TLS_OFF, "--preserve-digests", dest, f"oci:{back}:back")
    assert images.oci_layout_ref(back, "back")["digest"] == image.digest
    _, blobs = images.read_oci_layout(back)
    assert {digest: blobs[digest] for digest in image.blobs} == image.blobs
