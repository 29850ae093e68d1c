"""PKCS#11 URIs (RFC 7512) as key identifiers: `pkcs11:token=LABEL;object=LABEL` names a
key, `...;id=%01` one version of it (the key object's CKA_ID). Kept apart from
`pkcs11_keys.py` so that checking an identifier does not load the PKCS#11 library.

Only what names a secret key on a token is accepted: `token`, `object`, `id` and
`type=secret-key`, each once. Query attributes (`?pin-value=`, `?module-path=`) are
refused: an identifier is stored and shown (ACR's `keyIdentifier`), and the PIN and the
module come from the `[encryption]` settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from dockyard.common.errors import RequestInvalid

SCHEME = "pkcs11"
# RFC 7512's pk11-pchar in a path attribute's value: unreserved, pk11-res-avail and "&".
_SAFE = "-._~:[]@!$'()*+,=&"
_VALUE = re.compile(r"(?:[A-Za-z0-9\-._~:\[\]@!$'()*+,=&]|%[0-9A-Fa-f]{2})+")
_ATTRIBUTES = frozenset({"token", "object", "id", "type"})


@dataclass(frozen=True)
class Pkcs11Uri:
    """A key on a token; `id` (its CKA_ID) names one version, None the key itself."""

    token: str
    object: str
    id: bytes | None = None

    def with_id(self, id: bytes) -> Pkcs11Uri:
        return Pkcs11Uri(self.token, self.object, id)

    def __str__(self) -> str:
        """The one spelling Dockyard writes: token, object, then every byte of the id
        percent-encoded (as RFC 7512 recommends for ids)."""
        token, label = quote(self.token, safe=_SAFE), quote(self.object, safe=_SAFE)
        text = f"{SCHEME}:token={token};object={label}"
        if self.id is not None:
            text += ";id=" + "".join(f"%{byte:02X}" for byte in self.id)
        return text


def parse(identifier: str) -> Pkcs11Uri:
    """The key an RFC 7512 URI names; RequestInvalid if it is not one Dockyard can use."""
    if not identifier.startswith(f"{SCHEME}:"):
        raise _invalid(identifier, "it does not start with pkcs11:")
    path, query_mark, _ = identifier[len(SCHEME) + 1 :].partition("?")
    if query_mark:
        raise _invalid(
            identifier,
            "query attributes are not accepted (the PIN and module are [encryption] settings)",
        )
    values: dict[str, str] = {}
    for attribute in path.split(";") if path else []:
        name, equals, value = attribute.partition("=")
        if not equals or name not in _ATTRIBUTES:
            raise _invalid(identifier, f"{name!r} is not one of token, object, id, type")
        if name in values:
            raise _invalid(identifier, f"{name} appears twice")
        if not _VALUE.fullmatch(value):
            raise _invalid(identifier, f"the value of {name} is empty or not percent-encoded")
        values[name] = value
    if values.get("type", "secret-key") != "secret-key":
        raise _invalid(identifier, "a key-encryption key has type=secret-key")
    if "token" not in values or "object" not in values:
        raise _invalid(identifier, "token= and object= are required")
    try:
        token, label = (unquote_to_bytes(values[n]).decode() for n in ("token", "object"))
    except UnicodeDecodeError:
        raise _invalid(identifier, "token and object are UTF-8 labels") from None
    key_id = unquote_to_bytes(values["id"]) if "id" in values else None
    return Pkcs11Uri(token, label, key_id)


def _invalid(identifier: str, reason: str) -> RequestInvalid:
    """The error, quoting the identifier without its query (which may hold a PIN)."""
    shown = identifier.partition("?")[0]
    return RequestInvalid(f"invalid PKCS#11 key identifier {shown!r}: {reason}")
