"""A keyring for tests of encrypted blob stores: fixed data keys held in memory, one of
them current, changed by the test (a key rotation)."""

from __future__ import annotations

from dockyard.common.errors import KeyUnavailable

# Fixed, so that a subprocess (killed mid-conversion) uses the same keys as its test.
KEYS = {"k1": bytes(range(32)), "k2": bytes(range(100, 132)), "k3": b"\x07" * 32}


class FixedKeyring:
    def __init__(self, keys: dict[str, bytes] | None = None, current: str = "k1") -> None:
        self.keys = dict(KEYS if keys is None else keys)
        self.current_id = current

    def current(self) -> tuple[str, bytes]:
        return self.current_id, self.key(self.current_id)

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyUnavailable() from None
