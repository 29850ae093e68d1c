"""Key-encryption keys in an HSM, reached through PKCS#11 (python-pkcs11): the KEK is an
AES-256 secret key object on a token, created there sensitive and non-extractable by the
customer, and every wrap and unwrap runs inside the token; Dockyard never sees its bytes.
Identifiers are RFC 7512 URIs (`pkcs11_uris.py`); a key's versions are the AES key
objects with the same label (CKA_LABEL), told apart by CKA_ID, the greatest id (as a
big-endian number) being the newest: rotation is generating one more object with that
label and a greater id.

Why PKCS#11 rather than KMIP, Vault Transit or a cloud KMS: it is the one interface
nearly every HSM speaks (network HSMs, cloud HSMs such as Azure's Managed HSM and AWS
CloudHSM through their PKCS#11 libraries, USB tokens), and SoftHSM2, a Debian package,
implements it in-process, so the code that production runs is the code the tests run,
against a real token with no service to start. KMIP needs a KMIP server, Vault Transit a
Vault binary and a cloud KMS the cloud, none of which can be installed and run here;
each would be another provider behind the same `KeyProvider` seam, chosen by the
identifier's scheme.

Data keys are wrapped with AES-GCM (CKM_AES_GCM: C_Encrypt and C_Decrypt with the KEK, a
random 96-bit nonce, a 128-bit tag; the wrapped bytes are the nonce then the
ciphertext and tag, 60 bytes for a 32-byte key). PKCS#11's key wrap mechanisms
(CKM_AES_KEY_WRAP_PAD, RFC 5649) wrap key objects with C_WrapKey, not bytes: SoftHSM2
refuses them for C_Encrypt, so using them would mean creating each data key as an object
in the token and reading its value back after every unwrap. GCM authenticates what it
decrypts, so wrapped bytes that were changed, or wrapped by another key, fail to unwrap.

Thread safety: python-pkcs11 initialises a module with C_Initialize(NULL), which tells
the module that the application never calls it from two threads at once (SoftHSM2 then
switches its own locks off), and a PKCS#11 session must not be used by two threads at
once anyway. So every call into a module holds one process-wide lock. Sessions are
pooled, one per token per process, opened and logged in on first use and kept: a
login belongs to the application, not the session (a second C_Login fails with
USER_ALREADY_LOGGED_IN, and C_Logout on any session logs every session out), so that
state is process-wide like the library's own, and a login per call would cost the
token's PIN check each time. Wraps and unwraps happen once per data key (the caller
keeps data keys unwrapped in memory), so serialising them costs nothing measurable. A
session the token dropped (restarted, removed) is opened again once; a PIN the token
refused is not tried again in this process, since HSMs lock a PIN after a few wrong
tries. A forked child (granian's workers) starts with no sessions and initialises the
module again, as PKCS#11 requires.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pkcs11
from pkcs11 import (
    Attribute,
    DecryptMixin,
    EncryptMixin,
    GCMParams,
    KeyType,
    Mechanism,
    ObjectClass,
)
from pkcs11 import exceptions as p11

from dockyard.common.errors import KeyNotFound, KeyUnavailable, RequestInvalid
from dockyard.encryption.pkcs11_uris import SCHEME, Pkcs11Uri, parse

NONCE_BYTES = 12
TAG_BYTES = 16
T = TypeVar("T")

# The session itself is gone (the token or the module restarted, the token was pulled
# out): worth one more try on a new session.
_SESSION_LOST = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.UserNotLoggedIn,
    p11.TokenNotPresent,
    p11.DeviceRemoved,
)
_REASONS: dict[type[p11.PKCS11Error], str] = {
    p11.NoSuchToken: "no token with that label",
    p11.NoSuchKey: "no AES key object with that label and id on the token",
    p11.MultipleObjectsReturned: "several AES key objects have that label and id",
    p11.MultipleTokensReturned: "several tokens have that label",
    p11.PinIncorrect: "the token refused the PIN ([encryption] pkcs11_pin)",
    p11.PinLocked: "the token's user PIN is locked",
    p11.PinExpired: "the token's user PIN has expired",
    p11.UserPinNotInitialized: "the token has no user PIN",
    p11.TokenNotPresent: "the token is not present",
    p11.DeviceRemoved: "the token was removed",
}


def _reason(exc: p11.PKCS11Error) -> str:
    """What went wrong, in words: PKCS#11 errors carry a return code, never a PIN."""
    for kind, reason in _REASONS.items():
        if isinstance(exc, kind):
            return reason
    detail = f": {exc}" if str(exc) else ""
    return f"the PKCS#11 module failed ({type(exc).__name__}{detail})"


class _NoSession(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Login:
    session: Any  # pkcs11.Session
    pin_digest: bytes


@dataclass
class _Process:
    """This process's PKCS#11 state, which the modules keep per process: the lock every
    call holds, one logged-in session per (module, token), the PINs a token refused,
    and the modules to initialise again after a fork."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    logins: dict[tuple[str, str], _Login] = field(default_factory=dict)
    refused: set[tuple[str, str, bytes]] = field(default_factory=set)
    loaded: set[str] = field(default_factory=set)
    stale: set[str] = field(default_factory=set)

    def session(self, module: str, token_label: str, pin: str) -> Any:
        """The token's logged-in session, opened on first use; _NoSession if not."""
        digest = hashlib.sha256(pin.encode()).digest()
        login = self.logins.get((module, token_label))
        if login is not None:
            if not hmac.compare_digest(login.pin_digest, digest):
                raise _NoSession("the token is logged in with another PIN in this process")
            return login.session
        if (module, token_label, digest) in self.refused:
            raise _NoSession(
                "the token refused this PIN before; it is not tried again until the "
                "server restarts (tokens lock a PIN after a few wrong tries)"
            )
        try:
            token = self._library(module).get_token(token_label=token_label)
            session = token.open(user_pin=pin)
        except p11.PinIncorrect as exc:
            self.refused.add((module, token_label, digest))
            raise _NoSession(_reason(exc)) from exc
        except p11.PKCS11Error as exc:
            raise _NoSession(_reason(exc)) from exc
        self.logins[(module, token_label)] = _Login(session, digest)
        return session

    def drop(self, module: str, token_label: str) -> None:
        """Forget a session the token no longer knows (the next call opens another)."""
        self.logins.pop((module, token_label), None)

    def _library(self, module: str) -> Any:
        library = pkcs11.lib(module)  # loads and initialises once per process
        self.loaded.add(module)
        if module in self.stale:
            self.stale.discard(module)
            library.reinitialize()
        return library

    def after_fork_in_child(self) -> None:
        """The parent's sessions and initialisation are not the child's (PKCS#11: a
        child calls C_Initialize again); the lock is released, whoever held it."""
        self.logins.clear()
        self.stale |= self.loaded
        self.lock = threading.Lock()


_PROCESS = _Process()
# No fork while a call holds the lock (the child would inherit it held); the lock is
# looked up at each fork, since a child replaces it.
os.register_at_fork(
    before=lambda: _PROCESS.lock.acquire(),
    after_in_parent=lambda: _PROCESS.lock.release(),
    after_in_child=_PROCESS.after_fork_in_child,
)


def _id_order(key_id: bytes) -> tuple[int, int]:
    return int.from_bytes(key_id, "big"), len(key_id)


class Pkcs11KeyProvider:
    """`KeyProvider` for `pkcs11:` identifiers, on the tokens of one PKCS#11 module with
    one user PIN (the `[encryption]` settings). Every call looks its key up again, so
    a key object destroyed or switched off (CKA_ENCRYPT/CKA_DECRYPT false) counts at
    once."""

    scheme = SCHEME

    def __init__(self, module: Path | None, pin: str | None) -> None:
        self.module = module
        self._pin = pin

    def is_versioned(self, identifier: str) -> bool:
        return parse(identifier).id is not None

    def newest(self, key_identifier: str) -> str:
        uri = parse(key_identifier)
        if uri.id is not None:
            raise RequestInvalid(f"{key_identifier} names a version (id=); expected no id")

        def key_ids(session: Any) -> list[bytes]:
            template = {
                Attribute.CLASS: ObjectClass.SECRET_KEY,
                Attribute.KEY_TYPE: KeyType.AES,
                Attribute.LABEL: uri.object,
            }
            return [key[Attribute.ID] for key in session.get_objects(template)]

        ids = [key_id for key_id in self._call(uri, key_ids) if key_id]
        if not ids:
            raise KeyNotFound(
                f"encryption key {uri} is unavailable: no AES key object with that label "
                "and a CKA_ID on the token"
            )
        return str(uri.with_id(max(ids, key=_id_order)))

    def wrap(self, versioned_key_identifier: str, data_key: bytes) -> bytes:
        uri = self._versioned(versioned_key_identifier)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._call(
            uri,
            lambda session: self._key(session, uri, EncryptMixin).encrypt(
                data_key, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce)
            ),
        )
        return nonce + sealed

    def unwrap(self, versioned_key_identifier: str, wrapped: bytes) -> bytes:
        uri = self._versioned(versioned_key_identifier)
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        if len(sealed) <= TAG_BYTES:
            raise KeyUnavailable(f"the data key does not unwrap with encryption key {uri}")

        def decrypt(session: Any) -> bytes:
            key = self._key(session, uri, DecryptMixin)
            try:
                return key.decrypt(
                    sealed, mechanism=Mechanism.AES_GCM, mechanism_param=GCMParams(nonce)
                )
            except _SESSION_LOST:
                raise
            except p11.PKCS11Error as exc:
                raise KeyUnavailable(
                    f"the data key does not unwrap with encryption key {uri} (another "
                    f"key's, damaged, or the key may not decrypt: {type(exc).__name__})"
                ) from exc

        return self._call(uri, decrypt)

    def _versioned(self, identifier: str) -> Pkcs11Uri:
        uri = parse(identifier)
        if uri.id is None:
            raise RequestInvalid(f"{identifier} names no version; expected an id=")
        return uri

    @staticmethod
    def _key(session: Any, uri: Pkcs11Uri, use: type) -> Any:
        """The key object, if it may be used so (`EncryptMixin`, `DecryptMixin`:
        python-pkcs11 gives an object the methods its CKA_ENCRYPT/CKA_DECRYPT allow)."""
        key = session.get_key(
            object_class=ObjectClass.SECRET_KEY,
            key_type=KeyType.AES,
            label=uri.object,
            id=uri.id,
        )
        if not isinstance(key, use):
            raise KeyUnavailable(
                f"encryption key {uri} is unavailable: the key is disabled (its "
                f"{'CKA_ENCRYPT' if use is EncryptMixin else 'CKA_DECRYPT'} is false)"
            )
        return key

    def _call(self, uri: Pkcs11Uri, use: Callable[[Any], T]) -> T:
        """`use(session)` on the token's session, holding the process's lock; a session
        the token lost is replaced once. Every failure is KeyUnavailable."""
        if self.module is None:
            raise KeyUnavailable(
                f"encryption key {uri} is unavailable: no PKCS#11 module is set "
                "([encryption] pkcs11_module)"
            )
        if self._pin is None:
            raise KeyUnavailable(
                f"encryption key {uri} is unavailable: no PIN is set ([encryption] pkcs11_pin)"
            )
        module = str(self.module)
        with _PROCESS.lock:
            try:
                return self._attempt(module, uri, use)
            except _SESSION_LOST:
                _PROCESS.drop(module, uri.token)  # the token restarted: once more, anew
            try:
                return self._attempt(module, uri, use)
            except _SESSION_LOST as exc:
                _PROCESS.drop(module, uri.token)
                raise KeyUnavailable(
                    f"encryption key {uri} is unavailable: {_reason(exc)}"
                ) from exc

    def _attempt(self, module: str, uri: Pkcs11Uri, use: Callable[[Any], T]) -> T:
        """One try: a lost session escapes as itself, any other failure as
        KeyUnavailable."""
        assert self._pin is not None
        try:
            session = _PROCESS.session(module, uri.token, self._pin)
        except _NoSession as exc:
            raise KeyUnavailable(
                f"encryption key {uri} is unavailable: {exc.reason}"
            ) from exc.__cause__
        try:
            return use(session)
        except _SESSION_LOST:
            raise
        except p11.PKCS11Error as exc:
            raise KeyUnavailable(f"encryption key {uri} is unavailable: {_reason(exc)}") from exc
