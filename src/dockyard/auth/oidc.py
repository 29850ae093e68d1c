"""Tokens from trusted external OpenID Connect issuers (an enterprise IdP), accepted at
`/oauth2/exchange` as ACR accepts Entra tokens: signature checked against the issuer's
published keys, issuer and audience checked, and the subject mapped to an identity."""

from __future__ import annotations

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
        """The identity name or id the verified token maps to; InvalidToken otherwise."""
        try:
            claimed = jwt.decode(token, options={"verify_signature": False}).get("iss")
            issuer = self._issuers[claimed]
            key = self._keys[claimed].get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=_ALGORITHMS,
                audience=issuer.audiences,
                issuer=issuer.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except KeyError:
            raise InvalidToken("token is from an issuer this registry does not trust") from None
        except jwt.PyJWKClientError as exc:
            raise InvalidToken(f"cannot get the issuer's signing keys: {exc}") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token is not valid: {exc}") from None
        value = claims.get(issuer.claim)
        if not isinstance(value, str) or not value:
            raise InvalidToken(f"token has no {issuer.claim!r} claim")
        return value
