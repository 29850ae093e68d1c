"""`/oauth2/exchange` with tokens from a trusted external OpenID Connect issuer: a test
identity provider (an RSA key and its JWKS served on loopback) stands in for an
enterprise IdP, as Entra ID stands behind ACR's exchange."""

from __future__ import annotations

import http.server
import json
import threading
import time

import httpx
import jwt
import pytest
from conftest import RegistryServer, free_port
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://idp.example/tenant"
AUDIENCE = "https://containerregistry.azure.net"


class IdentityProvider:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]})

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.jwks_url = f"http://127.0.0.1:{self.server.server_port}/keys"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(
        self,
        subject: str,
        audience: str = AUDIENCE,
        key=None,
        issuer: str = ISSUER,
        lifetime: int = 600,
    ) -> str:
        now = int(time.time())
        claims = {"iss": issuer, "aud": audience, "sub": subject, "iat": now, "exp": now + lifetime}
        return jwt.encode(claims, key or self.key, algorithm="RS256", headers={"kid": "idp-1"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def idp():
    provider = IdentityProvider()
    try:
        yield provider
    finally:
        provider.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, idp: IdentityProvider):
    base = tmp_path_factory.mktemp("oidc")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=("--oidc-issuer", f"{ISSUER} {idp.jwks_url}"),
        env={"DOCKYARD_ADMIN_PASSWORD": "oidc-admin"},
    ).start() as running:
        yield running


def exchange(server: RegistryServer, token: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/oauth2/exchange",
        data={"grant_type": "access_token", "service": server.host, "access_token": token},
    )


def test_an_idp_token_becomes_a_refresh_token_for_the_mapped_identity(server, idp):
    server.admin("identity", "create", "alice@corp.example", "--kind", "user")
    server.manage(
        "role",
        "assignment",
        "create",
        "--assignee",
        "alice@corp.example",
        "--role",
        "AcrPush",
        "-r",
        "dockyard",
    )
    exchanged = exchange(server, idp.token("alice@corp.example"))
    assert exchanged.status_code == 200, exchanged.text
    access = httpx.post(
        f"{server.url}/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": server.host,
            "refresh_token": exchanged.json()["refresh_token"],
            "scope": "repository:alice/app:push,pull",
        },
    )
    assert access.status_code == 200, access.text
    granted = jwt.decode(access.json()["access_token"], options={"verify_signature": False})[
        "access"
    ][0]["actions"]
    assert {"pull", "push"} <= set(granted) and "delete" not in granted
    upload = httpx.post(
        f"{server.url}/v2/alice/app/blobs/uploads/",
        headers={"Authorization": f"Bearer {access.json()['access_token']}"},
    )
    assert upload.status_code == 202


@pytest.mark.parametrize("case", ["forged", "audience", "issuer", "expired", "unknown-user"])
def test_idp_tokens_that_must_be_refused(server, idp, case):
    server.admin("identity", "create", f"bob-{case}@corp.example", "--kind", "user")
    subject = f"bob-{case}@corp.example"
    token = {
        "forged": lambda: idp.token(
            subject, key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "audience": lambda: idp.token(subject, audience="https://elsewhere.example"),
        "issuer": lambda: idp.token(subject, issuer="https://evil.example"),
        "expired": lambda: idp.token(subject, lifetime=-120),
        "unknown-user": lambda: idp.token("nobody@corp.example"),
    }[case]()
    response = exchange(server, token)
    assert response.status_code == 401, response.text
    assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
