"""A registry's keys in the database: enabling wraps a new data key with the customer's
key, a rotation rewraps every data key (never unwrapping them with anything but the old
key), a non-versioned key is followed to its newest version, and a revoked key stops the
keyring once the unwrapped keys' time is up, until the key is back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dockyard.common.errors import KeyUnavailable, RequestInvalid
from dockyard.encryption.local_keys import LocalKeyProvider
from dockyard.encryption.registry_keys import RegistryKeys
from dockyard.metadata.encryption import data_keys_of
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def registry(meta: Metadata) -> RegistryRecord:
    with meta.transaction() as tx:
        return tx.create_registry("contoso", "contoso.example")


@pytest.fixture
def provider(tmp_path: Path) -> LocalKeyProvider:
    return LocalKeyProvider(tmp_path / "keys")


def test_enabling_wraps_one_data_key_and_the_keyring_unwraps_it(
    meta: Metadata, registry: RegistryRecord, provider: LocalKeyProvider
) -> None:
    versioned = provider.create_key("kek")
    keys = RegistryKeys(meta, provider)
    keys.enable(registry, "local:kek", "client-id")
    status = keys.status(registry)
    assert status is not None
    assert (status.key_identifier, status.versioned_key_identifier) == ("local:kek", versioned)
    assert status.identity == "client-id"
    [row] = data_keys_of(meta, registry.id)
    key_id, data_key = keys.keyring(registry.id).current()
    assert key_id == row.key_id and len(data_key) == 32
    assert data_key not in row.wrapped
    assert keys.keyring(registry.id).key(key_id) == data_key


def test_a_rotation_rewraps_the_data_keys_and_keeps_them(
    meta: Metadata, registry: RegistryRecord, provider: LocalKeyProvider
) -> None:
    provider.create_key("kek")
    keys = RegistryKeys(meta, provider)
    keys.enable(registry, "local:kek", None)
    key_id, data_key = keys.keyring(registry.id).current()
    assert keys.follow_newest(registry) is False  # nothing newer yet
    newer = provider.add_version("local:kek")
    assert keys.follow_newest(registry) is True
    [row] = data_keys_of(meta, registry.id)
    assert row.wrapped_by == newer
    assert keys.status(registry).last_rotation_at is not None  # type: ignore[union-attr]
    assert RegistryKeys(meta, provider).keyring(registry.id).current() == (key_id, data_key)
    # Another key altogether: `az acr encryption rotate-key --key-encryption-key`.
    other = provider.create_key("other")
    assert keys.rotate(registry, "local:other") is True
    assert data_keys_of(meta, registry.id)[0].wrapped_by == other
    assert RegistryKeys(meta, provider).keyring(registry.id).key(key_id) == data_key


def test_a_pinned_version_is_not_followed(
    meta: Metadata, registry: RegistryRecord, provider: LocalKeyProvider
) -> None:
    pinned = provider.create_key("kek")
    keys = RegistryKeys(meta, provider)
    keys.enable(registry, pinned, None)
    provider.add_version("local:kek")
    assert keys.follow_newest(registry) is False
    assert data_keys_of(meta, registry.id)[0].wrapped_by == pinned


def test_a_revoked_key_stops_the_keyring_until_it_is_back(
    meta: Metadata, registry: RegistryRecord, provider: LocalKeyProvider, tmp_path: Path
) -> None:
    provider.create_key("kek")
    ticks = Ticks()
    keys = RegistryKeys(meta, provider, check_seconds=60, monotonic=ticks)
    keys.enable(registry, "local:kek", None)
    keyring = keys.keyring(registry.id)
    current = keyring.current()
    saved = tmp_path / "saved"
    shutil.move(tmp_path / "keys" / "kek", saved)  # the customer revokes the key
    ticks.now = 30
    assert keyring.current() == current  # still within the time the keys are kept
    ticks.now = 61
    with pytest.raises(KeyUnavailable) as refused:
        keyring.current()
    assert "local:kek" in str(refused.value) and current[1].hex() not in str(refused.value)
    shutil.move(saved, tmp_path / "keys" / "kek")  # and restores it
    assert keyring.current() == current


def test_rotating_an_unencrypted_registry_is_refused(
    meta: Metadata, registry: RegistryRecord, provider: LocalKeyProvider
) -> None:
    with pytest.raises(RequestInvalid):
        RegistryKeys(meta, provider).rotate(registry)
    with pytest.raises(KeyUnavailable):
        RegistryKeys(meta, provider).keyring(registry.id).current()
