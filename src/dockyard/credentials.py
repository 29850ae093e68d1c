"""`DockyardCredential`: an Azure SDK `TokenCredential` backed by a Dockyard identity, so
`azure-containerregistry` (and anything else that takes a `TokenCredential`) works
against Dockyard with no external identity provider:

    from azure.containerregistry import ContainerRegistryClient
    from dockyard.credentials import DockyardCredential

    credential = DockyardCredential("https://registry.example:5000", CLIENT_ID, SECRET)
    client = ContainerRegistryClient("https://registry.example:5000", credential,
                                     audience="https://containerregistry.azure.net")

It buys an identity token with the client-credentials grant at `/oauth2/v2.0/token` (the
server's Entra-shaped token endpoint, which no registry's network rules guard); the SDK
then exchanges it at `/oauth2/exchange`, exactly as it exchanges an Entra token on ACR."""

from __future__ import annotations

import ssl
import threading
import time
from typing import Any, NamedTuple

import httpx

_EARLY_REFRESH_SECONDS = 300


class AccessToken(NamedTuple):
    """The shape azure-core expects back from `get_token`."""

    token: str
    expires_on: int


class DockyardCredential:
    def __init__(
        self, endpoint: str, client_id: str, client_secret: str, verify: bool | str = True
    ) -> None:
        """`verify`: False, True, or the path of a CA file (e.g. a self-signed server's)."""
        self._url = endpoint.rstrip("/") + "/oauth2/v2.0/token"
        self._client_id = client_id
        self._client_secret = client_secret
        self._verify = (
            ssl.create_default_context(cafile=verify) if isinstance(verify, str) else verify
        )
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], AccessToken] = {}

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        with self._lock:
            cached = self._tokens.get(scopes)
            if cached is not None and cached.expires_on - _EARLY_REFRESH_SECONDS > time.time():
                return cached
            response = httpx.post(
                self._url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._client_secret,
                    "scope": " ".join(scopes),
                },
                verify=self._verify,
                timeout=30,
            )
            response.raise_for_status()
            body = response.json()
            token = AccessToken(body["access_token"], int(time.time()) + int(body["expires_in"]))
            self._tokens[scopes] = token
            return token

    def close(self) -> None:
        """azure-core closes credentials it is handed; nothing is held open here."""
