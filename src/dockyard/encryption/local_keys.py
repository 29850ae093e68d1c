"""Key-encryption keys in files on the node: the embedded default, as the SQLite database
and the blob directory are. Owns the key directory; never logs or reports a key's bytes.

A key is named `local:NAME` (NAME as Key Vault names keys: letters, digits and hyphens)
and each of its versions `local:NAME/VERSION`. A version is 32 random bytes (AES-256) in
`KEY_DIR/NAME/VERSION.key`, readable by the owner only, written whole or not at all (a
draft linked into place), never overwritten and never changed: a data key wrapped with a
version unwraps with that version for as long as its file is kept. Rotation adds a
version; deleting a version's file makes what it wrapped unreadable, as deleting a key
in Key Vault does. VERSION is the UTC time it was made and a counter
(`20260418T101500Z-0000`), always after every version before it, even when the clock
went back or two are made in one second, so the newest version is the greatest.

Data keys are wrapped with AES key wrap with padding (RFC 5649, `cryptography`'s
`aes_key_wrap_with_padding`) rather than AES-GCM: it is the construction made for
wrapping keys (Key Vault's and most HSMs' `A256KW` family), needs no nonce (GCM's random
96-bit nonces are safe only while their number stays far below 2**32 per key, which
nobody counts here), checks integrity on unwrap, and makes 40 bytes of a 32-byte key.
It is deterministic: the same data key wrapped twice gives the same bytes, which tells
nothing, as every data key is random and wrapped once.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from dockyard.common.clock import Clock, utc_now
from dockyard.common.errors import Conflict, KeyNotFound, KeyUnavailable, RequestInvalid

SCHEME = "local"
KEY_BYTES = 32
_NAME = r"[0-9A-Za-z-]{1,127}"
_VERSION = r"(\d{8}T\d{6}Z)-(\d{4,})"
_IDENTIFIER = re.compile(rf"local:(?P<name>{_NAME})(?:/(?P<version>{_VERSION}))?")
_VERSION_FILE = re.compile(rf"({_VERSION})\.key")


def parse(identifier: str) -> tuple[str, str | None]:
    """`local:NAME[/VERSION]` as (NAME, VERSION or None); RequestInvalid if it is not."""
    match = _IDENTIFIER.fullmatch(identifier)
    if match is None:
        raise RequestInvalid(
            f"invalid local key identifier {identifier!r}: expected local:NAME or "
            "local:NAME/VERSION (NAME: letters, digits and hyphens)"
        )
    return match["name"], match["version"]


def _order(version: str) -> tuple[str, int]:
    stamp, _, counter = version.partition("-")
    return stamp, int(counter)


class LocalKeyProvider:
    """`KeyProvider` for `local:` identifiers, on the files under `key_dir`. Holds no
    state beyond the directory: every call reads the version's file, so a version
    deleted (or a rotation made by another node on shared files) counts at once."""

    scheme = SCHEME

    def __init__(self, key_dir: Path, clock: Clock = utc_now) -> None:
        self.key_dir = key_dir
        self._clock = clock

    def is_versioned(self, identifier: str) -> bool:
        return parse(identifier)[1] is not None

    def newest(self, key_identifier: str) -> str:
        name = self._unversioned(key_identifier)
        versions = self._versions(name)
        if not versions:
            raise KeyNotFound(f"encryption key {key_identifier} not found")
        return f"{SCHEME}:{name}/{versions[-1]}"

    def wrap(self, versioned_key_identifier: str, data_key: bytes) -> bytes:
        kek = self._read(versioned_key_identifier)
        return aes_key_wrap_with_padding(kek, data_key)

    def unwrap(self, versioned_key_identifier: str, wrapped: bytes) -> bytes:
        kek = self._read(versioned_key_identifier)
        try:
            return aes_key_unwrap_with_padding(kek, wrapped)
        except (InvalidUnwrap, ValueError):
            raise KeyUnavailable(
                f"the data key does not unwrap with encryption key {versioned_key_identifier} "
                "(another key's, or damaged)"
            ) from None

    def create_key(self, name: str) -> str:
        """A new key `local:NAME` with its first version; its versioned identifier.
        Conflict if the key exists (a key once made is only rotated)."""
        name, _ = parse(f"{SCHEME}:{name}")
        directory = self.key_dir / name
        self.key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            if self._versions(name):  # else a creation that failed half-way: finish it
                raise Conflict(
                    f"encryption key {SCHEME}:{name} exists; rotate it instead"
                ) from None
        return self._add(name)

    def add_version(self, key_identifier: str) -> str:
        """Rotation: a new version of an existing key, which `newest` names from now on;
        its versioned identifier. The versions before it stay, to unwrap what they
        wrapped."""
        name = self._unversioned(key_identifier)
        if not (self.key_dir / name).is_dir():
            raise KeyNotFound(f"encryption key {key_identifier} not found")
        return self._add(name)

    def _unversioned(self, key_identifier: str) -> str:
        name, version = parse(key_identifier)
        if version is not None:
            raise RequestInvalid(f"{key_identifier} names a version; expected local:NAME")
        return name

    def _versions(self, name: str) -> list[str]:
        """The key's versions, oldest first ([] if the key has none or is missing)."""
        try:
            files = os.listdir(self.key_dir / name)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyUnavailable(
                f"encryption key {SCHEME}:{name} cannot be listed ({exc.strerror})"
            ) from None
        found = (_VERSION_FILE.fullmatch(f) for f in files)
        return sorted((m[1] for m in found if m), key=_order)

    def _read(self, versioned_key_identifier: str) -> bytes:
        name, version = parse(versioned_key_identifier)
        if version is None:
            raise RequestInvalid(
                f"{versioned_key_identifier} names no version; expected local:NAME/VERSION"
            )
        try:
            kek = (self.key_dir / name / f"{version}.key").read_bytes()
        except FileNotFoundError:
            raise KeyNotFound(f"encryption key {versioned_key_identifier} not found") from None
        except OSError as exc:
            raise KeyUnavailable(
                f"encryption key {versioned_key_identifier} cannot be read ({exc.strerror})"
            ) from None
        if len(kek) != KEY_BYTES:
            raise KeyUnavailable(
                f"encryption key {versioned_key_identifier} is damaged (not {KEY_BYTES} bytes)"
            )
        return kek

    def _add(self, name: str) -> str:
        """Write a new version after the newest: a draft, then a hard link to the
        version's name, which fails rather than replace a version another process made
        meanwhile (then the next version name is tried)."""
        directory = self.key_dir / name
        draft = directory / f".draft-{secrets.token_hex(8)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            while True:
                version = self._next_version(self._versions(name))
                try:
                    os.link(draft, directory / f"{version}.key")
                    break
                except FileExistsError:
                    continue
        finally:
            draft.unlink()
        _sync_directory(directory)
        return f"{SCHEME}:{name}/{version}"

    def _next_version(self, versions: list[str]) -> str:
        stamp = _stamp(self._clock())
        if not versions or _order(versions[-1]) < (stamp, 0):
            return f"{stamp}-0000"
        last_stamp, counter = _order(versions[-1])
        return f"{last_stamp}-{counter + 1:04d}"


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _sync_directory(directory: Path) -> None:
    """Make the new name durable: a key lost in a crash loses every blob it wrapped."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
