"""The SAS-like query strings that authorize a build context's upload and a run log's
reads: Azure Blob clients (az) send no `Authorization` header, only the URL they were
handed, so the URL itself carries what it may do, on what, until when, signed with a key
derived from the server's secret key (every node has the same). Pure: no I/O."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from dockyard.common.errors import Denied

WRITE, READ = "w", "r"


class SignatureInvalid(Denied):
    """A URL whose signature does not match, or that has expired (Blob's 403)."""

    code = "AuthenticationFailed"


@dataclass(frozen=True)
class Signed:
    path: str  # what the URL names: `sources/<registry id>/<name>` or `logs/<...>`
    permission: str  # WRITE or READ
    expiry: int  # Unix seconds


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"dockyard tasks urls"
        ).derive(secret)

    def _signature(self, signed: Signed) -> str:
        message = f"{signed.permission}\n{signed.expiry}\n{signed.path}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def query(self, signed: Signed) -> str:
        """The query string that grants `signed`, in Blob SAS's spirit (`sp`, `se`, `sig`)."""
        return f"sp={signed.permission}&se={signed.expiry}&sig={self._signature(signed)}"

    def check(self, path: str, permission: str, query: dict[str, str], now: datetime) -> None:
        """Raise `SignatureInvalid` unless the query grants `permission` on `path` now."""
        try:
            expiry = int(query.get("se", ""))
        except ValueError:
            raise SignatureInvalid("the URL's signature is missing or malformed") from None
        signed = Signed(path, query.get("sp", ""), expiry)
        if signed.permission != permission or not hmac.compare_digest(
            self._signature(signed), query.get("sig", "")
        ):
            raise SignatureInvalid("the URL's signature does not grant this")
        if expiry < now.timestamp():
            raise SignatureInvalid("the URL has expired; ask for a new one")


def source_container(registry_id: int) -> str:
    return f"r{registry_id}-sources"


def log_container(registry_id: int) -> str:
    return f"r{registry_id}-logs"


class TaskUrls:
    """The upload and log URLs the management API hands out: `/_tasks/<container>/<blob>`
    on the server the client reached, three path segments, which the Azure SDK's
    `BlobClient.from_blob_url` reads as account, container and blob on any host."""

    def __init__(self, signer: UrlSigner, now: Callable[[], datetime], minutes: int) -> None:
        self.signer = signer
        self._now = now
        self._lifetime = timedelta(minutes=minutes)

    def _url(self, base: str, container: str, blob: str, permission: str) -> str:
        path = f"{container}/{blob}"
        expiry = int((self._now() + self._lifetime).timestamp())
        query = self.signer.query(Signed(path, permission, expiry))
        return f"{base.rstrip('/')}/_tasks/{path}?{query}"

    def upload(self, base: str, registry_id: int, name: str) -> str:
        return self._url(base, source_container(registry_id), name, WRITE)

    def log(self, base: str, registry_id: int, run_id: str) -> str:
        return self._url(base, log_container(registry_id), f"{run_id}.log", READ)
