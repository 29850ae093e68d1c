"""The key provider seam: who holds a registry's key-encryption key (KEK) and wraps and
unwraps its data keys with it, chosen by the key identifier's scheme.

A key identifier names a key and follows its newest version (ACR's `keyIdentifier`
without a version); a versioned identifier names one version (ACR's
`versionedKeyIdentifier`), which is what wraps a data key and what is stored beside the
wrapped bytes, so that a rotation leaves every wrapped data key readable. Two schemes:
`local:` (key files on the node, `local_keys.py`) and `pkcs11:` (an HSM through
PKCS#11, `pkcs11_keys.py`).

Every failure to reach or use a key raises `KeyUnavailable` (503), whose message names
the identifier and never key material or a PIN; an identifier that is not well formed,
or versioned where a key is expected (or the reverse), raises `RequestInvalid` (400).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from dockyard.common.clock import Clock, utc_now
from dockyard.common.errors import RequestInvalid
from dockyard.encryption import local_keys

if TYPE_CHECKING:
    from dockyard.settings import Settings

SCHEMES = ("local", "pkcs11")


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a key-encryption key the customer holds."""

    def is_versioned(self, identifier: str) -> bool:
        """Whether `identifier` names one version of a key (RequestInvalid if it is not
        an identifier of this provider)."""
        ...

    def newest(self, key_identifier: str) -> str:
        """The versioned identifier of the newest version of that key."""
        ...

    def wrap(self, versioned_key_identifier: str, data_key: bytes) -> bytes: ...

    def unwrap(self, versioned_key_identifier: str, wrapped: bytes) -> bytes: ...


def scheme_of(identifier: str) -> str:
    """`local` or `pkcs11`; RequestInvalid for any other."""
    scheme, colon, _ = identifier.partition(":")
    if not colon or scheme not in SCHEMES:
        shown = identifier.partition("?")[0]
        raise RequestInvalid(
            f"invalid key identifier {shown!r}: expected local:NAME or "
            "pkcs11:token=TOKEN;object=LABEL"
        )
    return scheme


class KeyProviders:
    """The key providers of one process, by scheme, each made on first use (the PKCS#11
    library loads only when a `pkcs11:` key is used). Itself a `KeyProvider` that hands
    each call to the identifier's provider."""

    def __init__(
        self,
        key_dir: Path,
        pkcs11_module: Path | None = None,
        pkcs11_pin: str | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.local = local_keys.LocalKeyProvider(key_dir, clock)
        self._pkcs11_module = pkcs11_module
        self._pkcs11_pin = pkcs11_pin
        self._pkcs11: KeyProvider | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock = utc_now) -> KeyProviders:
        pin = settings.encryption.pkcs11_pin
        return cls(
            settings.key_root,
            settings.encryption.pkcs11_module,
            pin.get_secret_value() if pin is not None else None,
            clock,
        )

    def provider_for(self, identifier: str) -> KeyProvider:
        if scheme_of(identifier) == "local":
            return self.local
        if self._pkcs11 is None:
            from dockyard.encryption.pkcs11_keys import Pkcs11KeyProvider

            self._pkcs11 = Pkcs11KeyProvider(self._pkcs11_module, self._pkcs11_pin)
        return self._pkcs11

    def is_versioned(self, identifier: str) -> bool:
        return self.provider_for(identifier).is_versioned(identifier)

    def newest(self, key_identifier: str) -> str:
        return self.provider_for(key_identifier).newest(key_identifier)

    def wrap(self, versioned_key_identifier: str, data_key: bytes) -> bytes:
        return self.provider_for(versioned_key_identifier).wrap(versioned_key_identifier, data_key)

    def unwrap(self, versioned_key_identifier: str, wrapped: bytes) -> bytes:
        return self.provider_for(versioned_key_identifier).unwrap(versioned_key_identifier, wrapped)
