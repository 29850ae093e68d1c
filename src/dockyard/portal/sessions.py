"""The portal's sessions and CSRF tokens, kept in signed cookies (no table): a session
is who signed in (the principal's subject, and for the admin user the registry it is
the admin of), until when, and the nonce its forms carry. The cookie is signed with an
HMAC key derived from the server's secret key, so every node reads every node's
sessions and nothing in it can be changed by the browser; it holds no password.

Pure: no I/O, no HTTP. `pages.py` sets and reads the cookies."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SESSION_COOKIE = "dockyard_portal"
# Before sign-in there is no session whose nonce a form could carry: the sign-in form's
# token is checked against this cookie instead (double submit, signed).
SIGNIN_COOKIE = "dockyard_portal_signin"
# Between leaving for an OpenID Connect issuer and coming back: what the sign-in sent
# there (state, nonce, PKCE verifier), which only this browser may bring back.
OIDC_COOKIE = "dockyard_portal_oidc"
SESSION_SECONDS = 8 * 3600
SIGNIN_SECONDS = 3600
OIDC_SECONDS = 600


@dataclass(frozen=True)
class Session:
    """`registry_id`: the registry whose admin user signed in (the admin user is one
    registry's); None for an identity, which is server-wide."""

    subject: str
    name: str
    registry_id: int | None
    expires: int
    csrf: str


class Cookies:
    """Signs and reads the portal's cookies with a key derived from the server's secret
    key (HKDF, an `info` of its own: never the key that seals stored secrets)."""

    def __init__(self, secret: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"dockyard portal cookies"
        ).derive(secret)

    def _sign(self, purpose: str, payload: bytes) -> str:
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        mac = hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        return f"{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"

    def _open(self, purpose: str, value: str | None) -> bytes | None:
        if not value or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        expected = hmac.new(self._key, f"{purpose}.{body}".encode(), hashlib.sha256).digest()
        try:
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(expected, given):
            return None
        return payload

    def new_session(
        self, subject: str, name: str, registry_id: int | None, now: float
    ) -> tuple[Session, str]:
        """A session from now on, and its cookie's value."""
        session = Session(subject, name, registry_id, int(now) + SESSION_SECONDS, _nonce())
        payload = orjson.dumps(
            {
                "sub": session.subject,
                "name": session.name,
                "reg": session.registry_id,
                "exp": session.expires,
                "csrf": session.csrf,
            }
        )
        return session, self._sign("session", payload)

    def session(self, value: str | None, now: float) -> Session | None:
        """The session a cookie carries, if its signature holds and it has not expired."""
        payload = self._open("session", value)
        if payload is None:
            return None
        try:
            found = orjson.loads(payload)
            session = Session(
                str(found["sub"]),
                str(found["name"]),
                None if found["reg"] is None else int(found["reg"]),
                int(found["exp"]),
                str(found["csrf"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return session if session.expires > now else None

    def new_signin(self, now: float) -> tuple[str, str]:
        """The sign-in form's CSRF token and the cookie's value that vouches for it."""
        token = _nonce()
        payload = orjson.dumps({"csrf": token, "exp": int(now) + SIGNIN_SECONDS})
        return token, self._sign("signin", payload)

    def signin_token(self, value: str | None, now: float) -> str | None:
        payload = self._open("signin", value)
        if payload is None:
            return None
        try:
            found = orjson.loads(payload)
            token, expires = str(found["csrf"]), int(found["exp"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        return token if expires > now else None

    def new_oidc(self, pending: dict[str, str], now: float) -> str:
        """The cookie's value that carries a sign-in at an issuer until it comes back."""
        return self._sign("oidc", orjson.dumps({**pending, "exp": int(now) + OIDC_SECONDS}))

    def oidc(self, value: str | None, now: float) -> dict[str, str] | None:
        """What `new_oidc` carried, if its signature holds and it has not expired."""
        payload = self._open("oidc", value)
        if payload is None:
            return None
        try:
            found = orjson.loads(payload)
            expires = int(found.pop("exp"))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return None
        if expires <= now or not all(isinstance(v, str) for v in found.values()):
            return None
        return found


def same_token(expected: str | None, given: str | None) -> bool:
    """Whether a form's (or htmx's header's) token is the expected one, in constant time."""
    return bool(expected) and bool(given) and hmac.compare_digest(expected or "", given or "")


def _nonce() -> str:
    return secrets.token_urlsafe(24)
