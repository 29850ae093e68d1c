"""The JWTs the token service hands out, in ACR's shapes:

- access tokens: short-lived, carry the docker `access` list the registry checks;
- refresh tokens: longer-lived, revocable (their `jti` is recorded), exchanged for access
  tokens; what `az acr login` gives docker as the password of the null-GUID user;
- identity tokens: what an identity's client id and secret buy at the token endpoint, the
  stand-in for an Entra access token that `/oauth2/exchange` accepts (so an Azure SDK
  `TokenCredential` works against Dockyard alone)."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from dockyard.auth.keys import ALGORITHM, SigningKeys

ISSUER = "dockyard"
IDENTITY_AUDIENCES = ("https://containerregistry.azure.net", "https://management.azure.com")


# Why a token for another audience is refused, where "another registry" is not the reason.
_WRONG_AUDIENCE = {
    "identity": "only an identity token is exchanged here (what an identity's client id "
    "and secret buy with the client-credentials grant); a registry's access or refresh "
    "token is not one",
}


class InvalidToken(Exception):
    """The token is malformed, forged, expired, for another audience or revoked."""


@dataclass(frozen=True)
class Lifetimes:
    access: timedelta = timedelta(minutes=20)
    refresh: timedelta = timedelta(hours=3)
    identity: timedelta = timedelta(hours=1)


class TokenSigner:
    def __init__(
        self, keys: SigningKeys, clock: Callable[[], datetime], lifetimes: Lifetimes
    ) -> None:
        self._keys = keys
        self._clock = clock
        self.lifetimes = lifetimes
        self._verified: dict[str, dict[str, Any]] = {}

    def _sign(self, claims: dict[str, Any], lifetime: timedelta) -> tuple[str, dict[str, Any]]:
        now = self._clock()
        claims = {
            "jti": secrets.token_hex(16),
            "iss": ISSUER,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
            "version": "1.0",
            **claims,
        }
        kid, key = self._keys.signing_key()
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid}), claims

    def access_token(
        self, audience: str, subject: str, access: list[dict[str, Any]]
    ) -> tuple[str, dict[str, Any]]:
        return self._sign(
            {
                "sub": subject,
                "aud": audience,
                "grant_type": "access_token",
                "access": access,
                "roles": [],
            },
            self.lifetimes.access,
        )

    def refresh_token(
        self, audience: str, subject: str, credential: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """A refresh token whose payload segment has no `-` or `_`: the Azure SDK 1.2.0
        decodes it with plain base64 and fails on the URL-safe alphabet. `credential`
        (`cred`): the password it was bought with, which it must outlive no more
        (`Authenticator.refresh_principal`)."""
        bound = {} if credential is None else {"cred": credential}
        for filler in range(64):
            token, claims = self._sign(
                {
                    "sub": subject,
                    "aud": audience,
                    "grant_type": "refresh_token",
                    "permissions": {"actions": ["*"], "notActions": []},
                    "roles": [],
                    **bound,
                    "pad": "x" * filler,
                },
                self.lifetimes.refresh,
            )
            payload = token.split(".")[1]
            if "-" not in payload and "_" not in payload:
                _check_plain_base64(payload)
                return token, claims
        raise RuntimeError("could not shape a refresh token the Azure SDK can decode")

    def identity_token(self, identity_id: str, audience: str) -> tuple[str, dict[str, Any]]:
        return self._sign(
            {"sub": identity_id, "aud": audience, "typ": "identity", "oid": identity_id},
            self.lifetimes.identity,
        )

    def decode(self, token: str, audience: str | tuple[str, ...], kind: str) -> dict[str, Any]:
        """Verify signature, lifetime, audience and kind (`access_token`, `refresh_token`
        or `identity`). Access tokens are remembered until they expire: they are checked
        on every request, and an ECDSA verification costs more than the request."""
        cached = self._verified.get(token)
        now = self._clock().timestamp()
        if cached is not None and cached["exp"] > now and kind == "access_token":
            if cached["aud"] == audience:
                return cached
            raise InvalidToken("token is for another registry")
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self._keys.verification_key(kid) if isinstance(kid, str) else None
            if key is None:
                raise InvalidToken("token was not signed by this registry")
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(_WRONG_AUDIENCE.get(kind, "token is for another registry")) from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token is not valid: {exc}") from None
        actual = claims.get("typ") if kind == "identity" else claims.get("grant_type")
        if actual != kind:
            raise InvalidToken(f"a {kind.replace('_', ' ')} is needed here")
        if kind == "access_token":
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[token] = claims
        return claims


def _check_plain_base64(segment: str) -> None:
    base64.b64decode(segment + "=" * (-len(segment) % 4), validate=True)
