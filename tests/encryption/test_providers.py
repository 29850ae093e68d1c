"""The key providers: what both must do (wrap and unwrap, follow the newest version,
keep old versions working, fail as KeyUnavailable), run once per provider through
`KeyProviders`, then what is particular to each: the local key files (their modes,
their versions' order) and PKCS#11 on a real SoftHSM2 (non-extractable keys, PINs,
tokens, disabled keys, threads, a restarted module, a forked worker)."""

from __future__ import annotations

import os
import re
import secrets
import stat
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fake_clock import FakeClock
from softhsm import USER_PIN, SoftHSM

from dockyard.common.errors import Conflict, KeyUnavailable, RequestInvalid
from dockyard.encryption.providers import KeyProviders
from dockyard.settings import load_settings


@dataclass
class Key:
    """One key of a provider and the customer's hands on it: `rotate()` adds a version
    (its versioned identifier), `delete(versioned)` removes one."""

    providers: KeyProviders
    identifier: str
    rotate: Callable[[], str]
    delete: Callable[[str], None]
    secrets_in_play: list[str] = field(default_factory=list)  # never in a message


def local_key(request: pytest.FixtureRequest, tmp_path: Path) -> Key:
    clock = FakeClock()
    providers = KeyProviders(tmp_path / "keys", clock=clock)
    name = "kek"
    providers.local.create_key(name)

    def rotate() -> str:
        clock.advance(timedelta(seconds=1))
        return providers.local.add_version(f"local:{name}")

    def delete(versioned: str) -> None:
        version = versioned.rpartition("/")[2]
        (tmp_path / "keys" / name / f"{version}.key").unlink()

    kek_files = (tmp_path / "keys" / name).glob("*.key")
    return Key(
        providers, f"local:{name}", rotate, delete, [f.read_bytes().hex() for f in kek_files]
    )


def pkcs11_key(request: pytest.FixtureRequest, tmp_path: Path) -> Key:
    softhsm: SoftHSM = request.getfixturevalue("softhsm")
    providers = KeyProviders(tmp_path / "keys", softhsm.module, USER_PIN)
    label = f"kek-{uuid.uuid4().hex[:8]}"
    versions = [1]
    softhsm.generate_key(label, b"\x01")

    def rotate() -> str:
        versions.append(versions[-1] + 1)
        return softhsm.generate_key(label, bytes([versions[-1]]))

    def delete(versioned: str) -> None:
        key_id = bytes.fromhex(versioned.rpartition(";id=")[2].replace("%", ""))
        softhsm.destroy_key(label, key_id)

    return Key(providers, softhsm.uri(label), rotate, delete, [USER_PIN])


PROVIDERS = {"local": local_key, "pkcs11": pkcs11_key}


@pytest.fixture(params=list(PROVIDERS))
def key(request: pytest.FixtureRequest, tmp_path: Path) -> Key:
    return PROVIDERS[request.param](request, tmp_path)


def unavailable(call: Callable[[], object], key: Key, names: str) -> KeyUnavailable:
    """The KeyUnavailable `call` raises: it names the key, and no secret."""
    with pytest.raises(KeyUnavailable) as caught:
        call()
    message = caught.value.message
    assert names in message
    assert not [secret for secret in key.secrets_in_play if secret in message]
    return caught.value


def test_a_data_key_round_trips_and_never_shows_in_its_wrapping(key: Key) -> None:
    versioned = key.providers.newest(key.identifier)
    assert versioned.startswith(key.identifier) and versioned != key.identifier
    assert key.providers.is_versioned(versioned)
    assert not key.providers.is_versioned(key.identifier)
    data_key = secrets.token_bytes(32)
    wrapped = key.providers.wrap(versioned, data_key)
    assert data_key not in wrapped
    assert key.providers.unwrap(versioned, wrapped) == data_key
    other = secrets.token_bytes(32)
    assert key.providers.unwrap(versioned, key.providers.wrap(versioned, other)) == other


def test_newest_follows_a_rotation_and_old_versions_still_unwrap(key: Key) -> None:
    first = key.providers.newest(key.identifier)
    data_key = secrets.token_bytes(32)
    wrapped_by_first = key.providers.wrap(first, data_key)
    second = key.rotate()
    assert key.providers.newest(key.identifier) == second != first
    assert key.providers.unwrap(first, wrapped_by_first) == data_key
    assert key.providers.unwrap(second, key.providers.wrap(second, data_key)) == data_key
    third = key.rotate()
    assert key.providers.newest(key.identifier) == third


def test_another_version_does_not_unwrap(key: Key) -> None:
    first = key.providers.newest(key.identifier)
    second = key.rotate()
    wrapped = key.providers.wrap(first, secrets.token_bytes(32))
    unavailable(lambda: key.providers.unwrap(second, wrapped), key, second)


def test_a_deleted_version_is_unavailable(key: Key) -> None:
    first = key.providers.newest(key.identifier)
    wrapped = key.providers.wrap(first, secrets.token_bytes(32))
    second = key.rotate()
    key.delete(first)
    unavailable(lambda: key.providers.unwrap(first, wrapped), key, first)
    unavailable(lambda: key.providers.wrap(first, b"k" * 32), key, first)
    assert key.providers.newest(key.identifier) == second
    key.delete(second)
    unavailable(lambda: key.providers.newest(key.identifier), key, key.identifier)


def test_tampered_wrapped_bytes_are_unavailable(key: Key) -> None:
    versioned = key.providers.newest(key.identifier)
    wrapped = key.providers.wrap(versioned, secrets.token_bytes(32))
    for position in (0, len(wrapped) // 2, len(wrapped) - 1):
        tampered = bytearray(wrapped)
        tampered[position] ^= 0x01
        unavailable(lambda t=bytes(tampered): key.providers.unwrap(versioned, t), key, versioned)
    unavailable(lambda: key.providers.unwrap(versioned, wrapped[:-1]), key, versioned)
    unavailable(lambda: key.providers.unwrap(versioned, b""), key, versioned)


def test_a_missing_key_is_unavailable(key: Key) -> None:
    missing = key.identifier.replace("kek", "absent")
    unavailable(lambda: key.providers.newest(missing), key, missing)


def test_identifiers_out_of_place_are_invalid_requests(key: Key) -> None:
    versioned = key.providers.newest(key.identifier)
    with pytest.raises(RequestInvalid):
        key.providers.newest(versioned)
    with pytest.raises(RequestInvalid):
        key.providers.wrap(key.identifier, b"k" * 32)
    with pytest.raises(RequestInvalid):
        key.providers.unwrap(key.identifier, b"w" * 40)
    for wrong in ("kek", "vault:kek", "local:", "local:../kek", "local:kek/1", "pkcs11:id=%01"):
        with pytest.raises(RequestInvalid):
            key.providers.newest(wrong)


# Local key files


def test_local_keys_are_files_only_the_owner_reads(tmp_path: Path) -> None:
    providers = KeyProviders(tmp_path / "keys")
    first = providers.local.create_key("kek")
    second = providers.local.add_version("local:kek")
    directory = tmp_path / "keys" / "kek"
    files = sorted(directory.iterdir())
    assert [f"local:kek/{f.stem}" for f in files] == [first, second]
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert path.stat().st_size == 32
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    assert files[0].read_bytes() != files[1].read_bytes()


def test_a_local_key_is_made_once_then_rotated(tmp_path: Path) -> None:
    providers = KeyProviders(tmp_path / "keys")
    providers.local.create_key("kek")
    with pytest.raises(Conflict):
        providers.local.create_key("kek")
    with pytest.raises(KeyUnavailable, match="local:other"):
        providers.local.add_version("local:other")
    with pytest.raises(RequestInvalid):
        providers.local.create_key("../kek")
    (tmp_path / "keys" / "half-made").mkdir()  # a creation that failed before its version
    assert providers.local.create_key("half-made") == providers.newest("local:half-made")


def test_local_versions_keep_their_order_when_the_clock_goes_back(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 4, 18, 10, 15, tzinfo=UTC))
    providers = KeyProviders(tmp_path / "keys", clock=clock)
    made = [providers.local.create_key("kek")]
    made.append(providers.local.add_version("local:kek"))  # the same second
    clock.advance(timedelta(hours=-1))
    made.append(providers.local.add_version("local:kek"))
    clock.advance(timedelta(hours=2))
    made.append(providers.local.add_version("local:kek"))
    assert made == [
        "local:kek/20260418T101500Z-0000",
        "local:kek/20260418T101500Z-0001",
        "local:kek/20260418T101500Z-0002",
        "local:kek/20260418T111500Z-0000",
    ]
    assert providers.newest("local:kek") == made[-1]


def test_a_damaged_local_key_file_is_unavailable(tmp_path: Path) -> None:
    providers = KeyProviders(tmp_path / "keys")
    versioned = providers.local.create_key("kek")
    (tmp_path / "keys" / "kek" / f"{versioned.rpartition('/')[2]}.key").write_bytes(b"short")
    with pytest.raises(KeyUnavailable, match="damaged"):
        providers.wrap(versioned, b"k" * 32)


def test_local_keys_live_in_the_data_directory_by_default(tmp_path: Path) -> None:
    providers = KeyProviders.from_settings(load_settings(None, data_dir=tmp_path))
    assert providers.local.key_dir == tmp_path / "keys"
    elsewhere = load_settings(None, data_dir=tmp_path, encryption={"key_dir": tmp_path / "k"})
    assert KeyProviders.from_settings(elsewhere).local.key_dir == tmp_path / "k"


# PKCS#11 on SoftHSM2


@pytest.fixture
def hsm(softhsm: SoftHSM, tmp_path: Path) -> KeyProviders:
    return KeyProviders(tmp_path / "keys", softhsm.module, USER_PIN)


def label() -> str:
    return f"kek-{uuid.uuid4().hex[:8]}"


def test_a_pkcs11_key_never_leaves_the_token(softhsm: SoftHSM, hsm: KeyProviders) -> None:
    kek = label()
    versioned = softhsm.generate_key(kek, b"\x01")
    assert hsm.unwrap(versioned, hsm.wrap(versioned, b"k" * 32)) == b"k" * 32
    assert softhsm.inspect_key(kek, b"\x01") == {
        "sensitive": True,
        "extractable": False,
        "value_error": "AttributeSensitive",
    }


def test_the_newest_pkcs11_version_has_the_greatest_id(softhsm: SoftHSM, hsm: KeyProviders) -> None:
    kek = label()
    softhsm.generate_key(kek, b"\x02")
    assert hsm.newest(softhsm.uri(kek)) == softhsm.uri(kek, b"\x02")
    softhsm.generate_key(kek, b"\x01\x00")  # 256, though it sorts first as bytes
    assert hsm.newest(softhsm.uri(kek)) == softhsm.uri(kek, b"\x01\x00")
    spelled_otherwise = f"pkcs11:type=secret-key;object={kek};token=dockyard"
    assert hsm.newest(spelled_otherwise) == softhsm.uri(kek, b"\x01\x00")


def test_a_wrong_pin_is_unavailable_and_not_tried_twice(softhsm: SoftHSM, tmp_path: Path) -> None:
    wrong_pin = "not-the-pin-4711"
    providers = KeyProviders(tmp_path, softhsm.module, wrong_pin)
    spare = softhsm.uri("kek", token="spare")  # a token this process never logged in to
    with pytest.raises(KeyUnavailable, match="refused the PIN") as caught:
        providers.newest(spare)
    with pytest.raises(KeyUnavailable, match="not tried again") as again:
        providers.newest(spare)
    for error in (caught.value, again.value):
        assert spare in error.message and wrong_pin not in error.message
    assert USER_PIN not in caught.value.message


def test_another_pin_on_a_token_in_use_is_unavailable(
    softhsm: SoftHSM, hsm: KeyProviders, tmp_path: Path
) -> None:
    kek = label()
    versioned = softhsm.generate_key(kek, b"\x01")
    hsm.wrap(versioned, b"k" * 32)  # logs this process in to the token
    other = KeyProviders(tmp_path, softhsm.module, "not-the-pin-4711")
    with pytest.raises(KeyUnavailable, match="another PIN"):
        other.wrap(versioned, b"k" * 32)


def test_an_absent_token_or_module_is_unavailable(softhsm: SoftHSM, tmp_path: Path) -> None:
    absent = softhsm.uri("kek", token="absent")
    hsm = KeyProviders(tmp_path, softhsm.module, USER_PIN)
    with pytest.raises(KeyUnavailable, match="no token with that label"):
        hsm.newest(absent)
    for module, pin in (
        (None, USER_PIN),
        (tmp_path / "missing.so", USER_PIN),
        (softhsm.module, None),
    ):
        with pytest.raises(KeyUnavailable, match=re.escape(absent)):
            KeyProviders(tmp_path, module, pin).newest(absent)


def test_a_disabled_pkcs11_key_is_unavailable(softhsm: SoftHSM, hsm: KeyProviders) -> None:
    kek = label()
    versioned = softhsm.generate_key(kek, b"\x01")
    wrapped = hsm.wrap(versioned, b"k" * 32)
    softhsm.disable_key(kek, b"\x01")
    with pytest.raises(KeyUnavailable, match=re.escape(versioned)):
        hsm.wrap(versioned, b"k" * 32)
    with pytest.raises(KeyUnavailable, match=re.escape(versioned)):
        hsm.unwrap(versioned, wrapped)


def test_pkcs11_calls_from_many_threads(softhsm: SoftHSM, hsm: KeyProviders) -> None:
    versioned = softhsm.generate_key(label(), b"\x01")
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                data_key = secrets.token_bytes(32)
                assert hsm.unwrap(versioned, hsm.wrap(versioned, data_key)) == data_key
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


# python-pkcs11 ends the search that met the lost session when it is collected, and
# reports that its end failed too.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_restarted_module_gets_a_new_session(softhsm: SoftHSM, hsm: KeyProviders) -> None:
    """An HSM restart invalidates every session: the call after it opens a new one."""
    import pkcs11

    versioned = softhsm.generate_key(label(), b"\x01")
    wrapped = hsm.wrap(versioned, b"k" * 32)
    pkcs11.lib(str(softhsm.module)).reinitialize()  # every session of the process is gone
    assert hsm.unwrap(versioned, wrapped) == b"k" * 32


def test_a_forked_worker_uses_the_token_anew(softhsm: SoftHSM, hsm: KeyProviders) -> None:
    """As granian's workers are forked from a main process that may have used the key."""
    versioned = softhsm.generate_key(label(), b"\x01")
    wrapped = hsm.wrap(versioned, b"k" * 32)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running pytest's clean-up
        try:
            os.write(write, b"ok" if hsm.unwrap(versioned, wrapped) == b"k" * 32 else b"no")
        except BaseException as exc:
            os.write(write, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 1000)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"ok"
    assert hsm.unwrap(versioned, wrapped) == b"k" * 32  # the parent's session is intact
