"""Signing in to the portal through a trusted OpenID Connect issuer: every `[[auth.oidc]]`
with a `portal_client_id` is a button on the sign-in page. The authorization code flow
(OpenID Connect Core §3.1) with PKCE (RFC 7636) and a nonce:

1. `start`: the issuer's endpoints from its discovery document (kept an hour), then the
   authorization request's URL with a fresh state, nonce and code verifier; the portal
   keeps those three in a signed cookie of the browser that left (`Cookies.new_oidc`);
2. `finish`, when the issuer sends the browser back: the state must be the cookie's (a
   callback the browser did not ask for is refused: no login CSRF), the code is redeemed
   at the token endpoint with the verifier, and the ID token's signature, issuer,
   audience (the client id) and nonce are checked by `ExternalIssuers.signed_in`, which
   maps its claim to an identity as `/oauth2/exchange` does.

The protocol's parameters are authlib's (`prepare_grant_uri`, `prepare_token_request`,
`create_s256_code_challenge`); the HTTP is httpx. Knows no cookies and no pages:
`pages.py` carries what this returns."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from dockyard.settings import OIDCIssuer

DISCOVERY_SECONDS = 3600
_TIMEOUT = httpx.Timeout(10.0)


class SignInFailed(Exception):
    """The sign-in did not complete; `message` is for the person signing in (never a
    secret), `status` the sign-in page's."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Offer:
    """A button of the sign-in page."""

    index: int
    label: str


@dataclass(frozen=True)
class _Endpoints:
    authorization: str
    token: str


class OidcSignIns:
    def __init__(self, issuers: Sequence[OIDCIssuer]) -> None:
        self._issuers = [issuer for issuer in issuers if issuer.portal_client_id]
        self._endpoints: dict[str, tuple[float, _Endpoints]] = {}

    def offers(self) -> list[Offer]:
        return [
            Offer(index, issuer.display_name or urlsplit(issuer.issuer).netloc or issuer.issuer)
            for index, issuer in enumerate(self._issuers)
        ]

    def issuer(self, index: int) -> OIDCIssuer:
        if not 0 <= index < len(self._issuers):
            raise SignInFailed("No such way to sign in.", 404)
        return self._issuers[index]

    async def start(self, index: int, redirect_uri: str) -> tuple[str, dict[str, str]]:
        """The authorization request's URL, and what the browser must bring back."""
        issuer = self.issuer(index)
        endpoints = await self._discover(issuer)
        pending = {
            "issuer": str(index),
            "state": secrets.token_urlsafe(24),
            "nonce": secrets.token_urlsafe(24),
            "verifier": secrets.token_urlsafe(48),  # 64 characters of RFC 7636's set
        }
        url = prepare_grant_uri(
            endpoints.authorization,
            issuer.portal_client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=issuer.scopes,
            state=pending["state"],
            nonce=pending["nonce"],
            code_challenge=create_s256_code_challenge(pending["verifier"]),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(
        self, pending: Mapping[str, str], answer: Mapping[str, str], redirect_uri: str
    ) -> tuple[OIDCIssuer, str]:
        """The issuer and the ID token of a sign-in the issuer sent the browser back
        from (its query string: `answer`), not yet verified."""
        if "error" in answer:  # a refusal signs nobody in: shown even without a state
            said = answer["error"]
            if answer.get("error_description"):
                said += f" ({answer['error_description']})"
            raise SignInFailed(f"The identity provider did not sign you in: {said}", 401)
        if not secrets.compare_digest(answer.get("state", ""), pending.get("state", "-")):
            raise SignInFailed("The sign-in has expired or did not start here: try again.", 403)
        issuer = self.issuer(int(pending["issuer"]))
        code = answer.get("code")
        if not code:
            raise SignInFailed("The identity provider sent no authorization code.", 400)
        endpoints = await self._discover(issuer)
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending["verifier"],
            client_id=issuer.portal_client_id if issuer.portal_client_secret is None else None,
        )
        auth = (
            None
            if issuer.portal_client_secret is None
            else httpx.BasicAuth(
                str(issuer.portal_client_id), issuer.portal_client_secret.get_secret_value()
            )
        )
        answered = await self._call(
            "POST",
            endpoints.token,
            content=body,
            auth=auth,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        id_token = answered.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SignInFailed("The identity provider answered without an ID token.", 502)
        return issuer, id_token

    async def _discover(self, issuer: OIDCIssuer) -> _Endpoints:
        """The issuer's authorization and token endpoints (OpenID Connect Discovery)."""
        kept = self._endpoints.get(issuer.issuer)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        found = await self._call(
            "GET", f"{issuer.issuer.rstrip('/')}/.well-known/openid-configuration"
        )
        authorization, token = found.get("authorization_endpoint"), found.get("token_endpoint")
        if not isinstance(authorization, str) or not isinstance(token, str):
            raise SignInFailed("The identity provider's discovery document is incomplete.", 502)
        endpoints = _Endpoints(authorization, token)
        self._endpoints[issuer.issuer] = (time.monotonic() + DISCOVERY_SECONDS, endpoints)
        return endpoints

    async def _call(self, method: str, url: str, **options: object) -> dict[str, object]:
        try:
            async with httpx.AsyncClient(timeout=_TIMEOUT) as client:
                response = await client.request(method, url, **options)  # type: ignore[arg-type]
            found = response.json()
        except (httpx.HTTPError, ValueError):
            raise SignInFailed("The identity provider cannot be reached.", 502) from None
        if response.status_code >= 400 or not isinstance(found, dict):
            said = found.get("error") if isinstance(found, dict) else None
            raise SignInFailed(
                f"The identity provider refused the sign-in ({said or response.status_code}).",
                401 if response.status_code in (400, 401) else 502,
            )
        return found
