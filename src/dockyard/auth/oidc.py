"""Tokens from trusted external OpenID Connect issuers (an enterprise IdP): access tokens
accepted at `/oauth2/exchange` as ACR accepts Entra tokens, and the ID tokens of the
portal's sign-in (`portal/oidc_signin.py`). Signature checked against the issuer's
published keys, issuer and audience checked, and the subject mapped to an identity."""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import jwt

from dockyard.auth.tokens import InvalidToken
from dockyard.settings import OIDCIssuer

_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


class ExternalIssuers:
    def __init__(self, issuers: Sequence[OIDCIssuer]) -> None:
        self._issuers = {issuer.issuer: issuer for issuer in issuers}
        # PyJWKClient caches the key set and refetches it for a key id it has not seen.
        self._keys = {i.issuer: jwt.PyJWKClient(i.jwks_url, cache_keys=True) for i in issuers}

    def issues(self, token: str) -> bool:
        """Whether `token` claims to come from a configured issuer (not yet verified)."""
        try:
            claimed = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.PyJWTError:
            return False
        return claimed in self._issuers

    def identity(self, token: str) -> str:
        """The identity name or id the verified access token maps to; InvalidToken
        otherwise."""
        try:
            claimed = jwt.decode(token, options={"verify_signature": False}).get("iss")
            issuer = self._issuers[claimed]
        except (jwt.PyJWTError, KeyError):
            raise InvalidToken("token is from an issuer this registry does not trust") from None
        return self._subject(issuer, token, issuer.audiences)

    def signed_in(self, issuer: str, id_token: str, client_id: str, nonce: str) -> str:
        """The identity an ID token from the portal's sign-in at `issuer` names: issued
        by it, to the portal's client id, with the nonce this sign-in sent (a token
        taken from another sign-in does not pass); InvalidToken otherwise."""
        found = self._issuers.get(issuer)
        if found is None:
            raise InvalidToken("token is from an issuer this registry does not trust")
        return self._subject(found, id_token, [client_id], nonce)

    def _subject(
        self, issuer: OIDCIssuer, token: str, audiences: Sequence[str], nonce: str | None = None
    ) -> str:
        try:
            key = self._signing_key(issuer, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=list(audiences),
                issuer=issuer.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"cannot get the issuer's signing keys: {exc}") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token is not valid: {exc}") from None
        if nonce is not None and not hmac.compare_digest(str(claims.get("nonce", "")), nonce):
            raise InvalidToken("token was not issued for this sign-in (its nonce differs)")
        value = claims.get(issuer.claim)
        if not isinstance(value, str) or not value:
            raise InvalidToken(f"token has no {issuer.claim!r} claim")
        return value

    def _signing_key(self, issuer: OIDCIssuer, token: str) -> jwt.PyJWK:
        """The key the token's `kid` names; a token without one may come from an issuer
        with a single key (OpenID Connect Core §10.1 asks for a `kid` only where the key
        set has several)."""
        keys = self._keys[issuer.issuer]
        kid = jwt.get_unverified_header(token).get("kid")
        if kid is not None:
            return keys.get_signing_key(kid)
        found = keys.get_signing_keys()
        if len(found) != 1:
            raise InvalidToken("token names no key (kid) and the issuer has several")
        return found[0]
