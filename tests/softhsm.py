"""A real SoftHSM2 for tests: Debian's `softhsm2` (its PKCS#11 module and
`softhsm2-util`), tokens in a temporary directory named by a `SOFTHSM2_CONF` of its own,
each token initialised with `softhsm2-util --init-token` at start (a module already
loaded in a process sees no token made after it), and key objects managed with
python-pkcs11.

Keys are managed in a child process (this file run as a script), as a customer's HSM
tool would: PKCS#11 logins belong to a process, so a session of the test process's own
would share, and on closing log out, the provider's login. The file-based token store
shows each change to every process at once.

Owns only the directory it makes and the `SOFTHSM2_CONF` it sets (restored by `stop()`).
Anything missing raises: a test that needs an HSM and cannot have it fails, never skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

USER_PIN = "dockyard-user-1"
SO_PIN = "dockyard-so-1"
TOKENS = ("dockyard", "spare")  # "spare": never logged in by the tests with USER_PIN
MODULES = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
)
INSTALL = "install it with `make install` (Debian's softhsm2, PyPI's python-pkcs11)"


class SoftHSMUnavailable(RuntimeError):
    pass


def _module() -> Path:
    for module in MODULES:
        if module.is_file():
            return module
    raise SoftHSMUnavailable(f"SoftHSM2's PKCS#11 module (libsofthsm2.so) not found: {INSTALL}")


class SoftHSM:
    """SoftHSM2 tokens for one test session. `start()` makes them, `generate_key()` and
    the other key methods change their key objects, `stop()` removes them."""

    def __init__(self, tokens: tuple[str, ...] = TOKENS) -> None:
        self.tokens = tokens
        self.module = Path()
        self.root: Path | None = None
        self._previous_conf: str | None = None

    @property
    def conf(self) -> Path:
        assert self.root is not None
        return self.root / "softhsm2.conf"

    def start(self) -> SoftHSM:
        self.module = _module()
        util = shutil.which("softhsm2-util")
        if util is None:
            raise SoftHSMUnavailable(f"softhsm2-util not found: {INSTALL}")
        if importlib.util.find_spec("pkcs11") is None:
            raise SoftHSMUnavailable(f"python-pkcs11 is not installed: {INSTALL}")
        self.root = Path(tempfile.mkdtemp(prefix="dockyard-softhsm-"))
        (self.root / "tokens").mkdir()
        self.conf.write_text(
            f"directories.tokendir = {self.root / 'tokens'}\n"
            "objectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
        )
        for label in self.tokens:
            result = subprocess.run(
                [util, "--init-token", "--free", "--label", label,
                 "--pin", USER_PIN, "--so-pin", SO_PIN],
                env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
                capture_output=True,
                text=True,
            )  # fmt: skip
            if result.returncode != 0:
                self.stop()
                raise SoftHSMUnavailable(f"softhsm2-util --init-token failed: {result.stderr}")
        self._previous_conf = os.environ.get("SOFTHSM2_CONF")
        os.environ["SOFTHSM2_CONF"] = str(self.conf)  # read when this process loads the module
        return self

    def stop(self) -> None:
        if self._previous_conf is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = self._previous_conf
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def uri(self, label: str, key_id: bytes | None = None, token: str = "dockyard") -> str:
        """The key identifier of `label` (versioned if `key_id`), as Dockyard spells it."""
        text = f"pkcs11:token={token};object={label}"
        return text if key_id is None else text + ";id=" + "".join(f"%{b:02X}" for b in key_id)

    def generate_key(self, label: str, key_id: bytes, token: str = "dockyard") -> str:
        """A new version of key `label`: an AES-256 key object made in the token,
        sensitive and non-extractable, with CKA_ID `key_id`; its versioned identifier."""
        self._admin("generate", token, label, key_id)
        return self.uri(label, key_id, token)

    def destroy_key(self, label: str, key_id: bytes, token: str = "dockyard") -> None:
        self._admin("destroy", token, label, key_id)

    def disable_key(self, label: str, key_id: bytes, token: str = "dockyard") -> None:
        """Switch the key's use off (CKA_ENCRYPT and CKA_DECRYPT false), as an HSM
        administrator disables a key."""
        self._admin("disable", token, label, key_id)

    def inspect_key(self, label: str, key_id: bytes, token: str = "dockyard") -> dict[str, Any]:
        """The key's CKA_SENSITIVE and CKA_EXTRACTABLE, and what reading its CKA_VALUE
        gave: `value_error`, the python-pkcs11 error's name, or None if it was read."""
        return self._admin("inspect", token, label, key_id)

    def _admin(self, operation: str, token: str, label: str, key_id: bytes) -> dict[str, Any]:
        assert self.root is not None, "SoftHSM not started"
        result = subprocess.run(
            [sys.executable, __file__, operation, token, label, key_id.hex()],
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise SoftHSMUnavailable(f"{operation} {token}/{label} failed: {result.stderr}")
        return json.loads(result.stdout)


def _administer(operation: str, token: str, label: str, key_id_hex: str) -> dict[str, Any]:
    """One key operation in this (child) process, logged in with USER_PIN."""
    import pkcs11
    from pkcs11 import Attribute, KeyType, ObjectClass

    key_id = bytes.fromhex(key_id_hex)
    library = pkcs11.lib(str(_module()))
    with library.get_token(token_label=token).open(rw=True, user_pin=USER_PIN) as session:
        if operation == "generate":
            session.generate_key(
                KeyType.AES,
                256,
                label=label,
                id=key_id,
                store=True,
                template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                },
            )
            return {}
        key = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label, id=key_id)
        if operation == "destroy":
            key.destroy()
            return {}
        if operation == "disable":
            key[Attribute.ENCRYPT] = False
            key[Attribute.DECRYPT] = False
            return {}
        if operation == "inspect":
            try:
                key[Attribute.VALUE]
                value_error = None
            except pkcs11.PKCS11Error as exc:
                value_error = type(exc).__name__
            return {
                "sensitive": key[Attribute.SENSITIVE],
                "extractable": key[Attribute.EXTRACTABLE],
                "value_error": value_error,
            }
    raise ValueError(f"unknown operation {operation}")


if __name__ == "__main__":
    print(json.dumps(_administer(*sys.argv[1:])))
