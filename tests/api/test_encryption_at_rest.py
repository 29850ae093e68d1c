"""Encryption at rest through the registry API, in process, with local key files: once a
registry's encryption is on, what is pushed is stored encrypted (no plaintext in any
file of the data directory) and pulled back as pushed, whole or by range; a revoked key
makes pulls and pushes answer 503 `UNAVAILABLE` in the OCI shape once the unwrapped
keys' time is up, and its return restores them with nothing lost."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from endpoint import AppEndpoint
from images import sha256_digest
from softhsm import USER_PIN, SoftHSM

from dockyard.auth.secret_box import REGISTRY_SEALED
from dockyard.common.errors import KeyUnavailable
from dockyard.encryption.jobs import encrypt_registries_once
from dockyard.encryption.stores import SETTLED_SECONDS
from dockyard.management.registry_resources import EncryptionChange, RegistryChange
from dockyard.metadata.access import AccessStore
from dockyard.metadata.cache_rules import CacheRuleStore
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.webhooks import WebhookStore
from dockyard.services import Services
from dockyard.webhooks.delivery import Sender

MARKER = b"DOCKYARD-PLAINTEXT-MARKER-"


@pytest.fixture
def endpoint(make_services) -> Iterator[AppEndpoint]:
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    app = AppEndpoint(services)
    yield app
    app.close()


def enable(services: Services) -> None:
    services.registry_keys._provider.local.create_key("kek")  # type: ignore[attr-defined]
    placement = services.registry_resources.placement_of(registry(services))
    services.registry_resources.update(
        placement,
        "dockyard",
        RegistryChange(encryption=EncryptionChange(True, "local:kek")),
    )


def registry(services: Services) -> RegistryRecord:
    return services.registries.for_host("localhost:5000")


def stored_files(root: Path) -> Iterator[Path]:
    return (path for path in root.rglob("*") if path.is_file() and path.suffix != ".db")


def test_pushed_bytes_are_stored_encrypted_and_pulled_back(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    enable(services)
    data = (MARKER + os.urandom(40)) * 5000  # a few blocks, the marker in each
    digest = endpoint.push_blob("app/encrypted", data)
    for path in stored_files(services.settings.blob_root):
        assert MARKER not in path.read_bytes(), path
    with endpoint.client() as http:
        pulled = http.get(f"/v2/app/encrypted/blobs/{digest}")
        assert pulled.status_code == 200 and pulled.content == data
        ranged = http.get(
            f"/v2/app/encrypted/blobs/{digest}", headers={"Range": "bytes=65000-140000"}
        )
        assert ranged.status_code == 206 and ranged.content == data[65000:140001]


def test_a_revoked_key_answers_503_until_it_is_back(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    enable(services)
    digest = endpoint.push_blob("app/revoked", b"layer bytes " * 1000)
    keys_dir = services.settings.key_root / "kek"
    saved = keys_dir.with_name("kek-saved")
    shutil.move(keys_dir, saved)  # the customer revokes the key...
    services.registry_keys.forget(registry(services).id)  # ...and its time is up
    with endpoint.client() as http:
        refused = http.get(f"/v2/app/revoked/blobs/{digest}")
        assert refused.status_code == 503, refused.text
        assert refused.json()["errors"][0]["code"] == "UNAVAILABLE"
        more = b"more layer bytes"
        pushed = http.post(
            f"/v2/app/revoked/blobs/uploads/?digest={sha256_digest(more)}", content=more
        )
        assert pushed.status_code == 503, pushed.text
        assert pushed.json()["errors"][0]["code"] == "UNAVAILABLE"
    shutil.move(saved, keys_dir)
    with endpoint.client() as http:
        restored = http.get(f"/v2/app/revoked/blobs/{digest}")
        assert restored.status_code == 200 and restored.content == b"layer bytes " * 1000


def test_blobs_stored_before_encryption_are_encrypted_by_the_background_job(
    endpoint: AppEndpoint,
) -> None:
    services = endpoint.services
    data = (MARKER + os.urandom(40)) * 3000
    digest = endpoint.push_blob("app/before", data)
    enable(services)
    with endpoint.client() as http:  # still served while nothing is converted
        assert http.get(f"/v2/app/before/blobs/{digest}").content == data
    # Other processes' stores may not encrypt yet: the conversion waits for them.
    assert 0 < encrypt_registries_once(services) <= SETTLED_SECONDS  # type: ignore[operator]
    assert any(MARKER in path.read_bytes() for path in stored_files(services.settings.blob_root))
    settled = datetime.now(UTC) + timedelta(seconds=SETTLED_SECONDS)
    assert encrypt_registries_once(services, now=settled) is None
    for path in stored_files(services.settings.blob_root):
        assert MARKER not in path.read_bytes(), path
    with endpoint.client() as http:
        assert http.get(f"/v2/app/before/blobs/{digest}").content == data
    services.registry_keys._provider.local.add_version("local:kek")  # type: ignore[attr-defined]
    encrypt_registries_once(services)  # follows the key's newest version
    status = services.registry_keys.status(registry(services))
    assert status is not None and status.last_rotation_at is not None
    with endpoint.client() as http:
        assert http.get(f"/v2/app/before/blobs/{digest}").content == data


def test_a_key_in_an_hsm_encrypts_the_registry_and_its_loss_stops_it(
    make_services, softhsm: SoftHSM
) -> None:
    """The same through PKCS#11 on a real SoftHSM2 token: the KEK never leaves it."""
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        encryption={"pkcs11_module": str(softhsm.module), "pkcs11_pin": USER_PIN},
    )
    endpoint = AppEndpoint(services)
    try:
        label = f"kek-{uuid.uuid4().hex[:8]}"
        softhsm.generate_key(label, b"\x01")
        placement = services.registry_resources.placement_of(registry(services))
        services.registry_resources.update(
            placement,
            "dockyard",
            RegistryChange(encryption=EncryptionChange(True, softhsm.uri(label))),
        )
        data = (MARKER + os.urandom(40)) * 2000
        digest = endpoint.push_blob("app/hsm", data)
        for path in stored_files(services.settings.blob_root):
            assert MARKER not in path.read_bytes(), path
        with endpoint.client() as http:
            assert http.get(f"/v2/app/hsm/blobs/{digest}").content == data
        softhsm.destroy_key(label, b"\x01")
        services.registry_keys.forget(registry(services).id)
        with endpoint.client() as http:
            refused = http.get(f"/v2/app/hsm/blobs/{digest}")
        assert refused.status_code == 503, refused.text
        assert USER_PIN not in refused.text
    finally:
        endpoint.close()


def test_a_new_data_key_rewrites_the_blobs_in_the_background(make_services) -> None:
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        encryption={"check_seconds": 0.01},
    )
    endpoint = AppEndpoint(services)
    try:
        enable(services)
        data = os.urandom(300_000)
        digest = endpoint.push_blob("app/rotated", data)
        store = services.stores.for_registry("dockyard")
        first = store.key_id_of(digest)  # type: ignore[attr-defined]
        keys, record = services.registry_keys, registry(services)
        second = keys.new_data_key(record)
        assert keys.older_data_keys(record) == {first}
        encrypt_registries_once(services)  # rewrites the blob under the new key
        assert store.key_id_of(digest) == second  # type: ignore[attr-defined]
        with endpoint.client() as http:
            assert http.get(f"/v2/app/rotated/blobs/{digest}").content == data
        time.sleep(0.05)  # every process writes with the new key by now (2 x check_seconds)
        encrypt_registries_once(services)  # nothing left under the old key: retired
        assert keys.older_data_keys(record) == set()
        with endpoint.client() as http:
            assert http.get(f"/v2/app/rotated/blobs/{digest}").content == data
    finally:
        endpoint.close()


def test_a_process_that_has_not_noticed_encryption_opens_secrets_resealed_elsewhere(
    endpoint: AppEndpoint, make_services
) -> None:
    services = endpoint.services
    record = registry(services)
    before = services.administration.set_admin_user(record, True)
    other = make_services(  # another node: it read which registries encrypt just now
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    assert other.box.open(AccessStore(other.meta).admin_passwords(record.id)[0].value, record.id)
    other.stores.for_registry(record.name)
    enable(services)
    encrypt_registries_once(services)  # reseals the admin passwords under the registry's keys
    assert other.administration.admin_credentials(record) == before


def test_the_registrys_secrets_go_under_its_keys(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    record = registry(services)
    before = services.administration.set_admin_user(record, True)
    services.webhooks.create(
        record, "hookone", "http://127.0.0.1:9/hook", ["push"], {"X-Secret": "header-value"}
    )
    services.cache_rules.create_credential_set(
        record, "upstream", "docker.io", "someone", "upstream-password"
    )
    enable(services)
    encrypt_registries_once(services)
    meta = services.meta
    sealed = [p.value for p in AccessStore(meta).admin_passwords(record.id)]
    [hook] = WebhookStore(meta).webhooks(record.id)
    sealed += [hook.sealed_service_uri, hook.sealed_custom_headers or ""]
    sealed += [s.sealed_password for s in CacheRuleStore(meta).credential_sets(record.id)]
    assert len(sealed) == 5 and all(value.startswith(REGISTRY_SEALED) for value in sealed)
    assert services.administration.admin_credentials(record) == before
    target = Sender(WebhookStore(meta), services.box, services.clock, 1.0).target(hook)
    assert target.headers == {"X-Secret": "header-value"}
    services.registry_keys._provider.local.key_dir.joinpath("kek").rename(  # type: ignore[attr-defined]
        services.settings.key_root / "revoked"
    )
    services.registry_keys.forget(record.id)
    with pytest.raises(KeyUnavailable):
        services.administration.admin_credentials(record)
