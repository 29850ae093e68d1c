"""The token service and the logins behind it, in process: what a token carries, what a
refresh token survives, the lockout's count, the cost of an unknown name, the challenges
`/v2/` answers with, and OAuth's error shape on every token endpoint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from typing import Any

import httpx
import jwt
import pytest
from argon2 import PasswordHasher

from dockyard.app import create_app
from dockyard.auth import passwords
from dockyard.metadata.records import RegistryRecord
from dockyard.services import Services

HOST = "localhost:5000"
ADMIN_PASSWORD = "admin-password-for-tests"
NULL_GUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture
def services(make_services) -> Services:
    built = make_services(
        registry={"default_name": "dockyard", "login_server": HOST},
        auth={"max_failed_logins": 3},
    )
    with built.meta.transaction() as tx:
        tx.create_registry("contoso", "contoso.example")
    built.registries.reload()
    built.administration.set_admin_user(registry(built), True, ADMIN_PASSWORD)
    return built


def registry(services: Services, name: str = "dockyard") -> RegistryRecord:
    return next(r for r in services.meta.registries() if r.name == name)


class Client:
    """Requests to the app in process, from one address."""

    def __init__(self, services: Services, address: str = "192.0.2.1") -> None:
        app = create_app(services, background=False)
        self._transport = httpx.ASGITransport(app=app, client=(address, 40000))

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            async with httpx.AsyncClient(
                transport=self._transport, base_url=f"http://{HOST}"
            ) as http:
                return await http.request(method, path, **kwargs)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_get(http: Client, user: str, password: str, *scopes: str) -> httpx.Response:
    return http.get(
        "/oauth2/token",
        params=[("service", HOST), *(("scope", s) for s in scopes)],
        headers=basic(user, password),
    )


def access_of(token: str) -> dict[tuple[str, str], list[str]]:
    claims = jwt.decode(token, options={"verify_signature": False})
    return {(a["type"], a["name"]): a["actions"] for a in claims["access"]}


def offline_token(http: Client, user: str, password: str) -> str:
    response = http.post(
        "/oauth2/token",
        data={
            "grant_type": "password",
            "service": HOST,
            "username": user,
            "password": password,
            "access_type": "offline",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["refresh_token"]


def redeem(http: Client, refresh: str) -> httpx.Response:
    return http.post(
        "/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "service": HOST,
            "refresh_token": refresh,
            "scope": "repository:app:pull",
        },
    )


def pusher(services: Services) -> tuple[str, str]:
    """A repository token that may pull, push, delete and read and write metadata."""
    actions = ["content/read", "content/write", "content/delete", "metadata/read"]
    services.administration.put_scope_map(
        registry(services), "all", [f"repositories/*/{a}" for a in [*actions, "metadata/write"]]
    )
    credentials = services.administration.create_token(registry(services), "ci", "all")
    return "ci", credentials.passwords["password1"]


# -- what a token carries ---------------------------------------------------------------------


def test_access_token_lifetime_is_configurable(make_services) -> None:
    built = make_services(
        registry={"default_name": "dockyard", "login_server": HOST},
        auth={"access_token_minutes": 1},
    )
    built.administration.set_admin_user(registry(built), True, ADMIN_PASSWORD)
    response = token_get(Client(built), "dockyard", ADMIN_PASSWORD, "repository:x:pull")
    assert response.status_code == 200, response.text
    exp = jwt.decode(response.json()["access_token"], options={"verify_signature": False})["exp"]
    assert exp - time.time() <= 61


def test_a_token_carries_what_was_asked_for_and_is_held_nothing_more(services) -> None:
    http = Client(services)
    user, password = pusher(services)
    pull = token_get(http, user, password, "repository:app:pull")
    assert access_of(pull.json()["access_token"]) == {("repository", "app"): ["pull"]}
    both = token_get(http, user, password, "repository:app:pull,push", "repository:b:delete")
    assert access_of(both.json()["access_token"]) == {
        ("repository", "app"): ["pull", "push"],
        ("repository", "b"): ["delete"],
    }


# -- logins ---------------------------------------------------------------------------------------


class CountingHasher(PasswordHasher):
    """argon2 with the same parameters, counting verifications."""

    def __init__(self) -> None:
        super().__init__()
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


def test_unknown_names_cost_what_a_wrong_secret_costs(services, monkeypatch) -> None:
    """No timing assertion: the unknown name runs as many argon2 verifications as a
    known one with a wrong secret does."""
    hasher = CountingHasher()
    monkeypatch.setattr(passwords, "_HASHER", hasher)
    identity, _ = services.administration.create_identity("builder")
    _, _ = pusher(services)
    http = Client(services)

    def verifications(user: str) -> int:
        hasher.verified = 0
        assert token_get(http, user, "wrong-secret").status_code == 401
        return hasher.verified

    cost = verifications("nobody")
    assert cost >= 1
    assert cost == verifications(identity.id) == verifications("builder") == verifications("ci")
    refused = http.post(
        "/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "nobody",
            "client_secret": "wrong",
            "scope": "https://management.azure.com/.default",
        },
    )
    assert refused.status_code == 401 and hasher.verified >= 1


def test_the_lockout_counts_per_principal_whatever_its_name_or_host(services) -> None:
    identity, secret = services.administration.create_identity("builder")
    services.administration.assign_role(None, identity.id, "AcrPull")
    http = Client(services)
    for _ in range(3):
        assert token_get(http, identity.id, "wrong").status_code == 401
    by_name = token_get(http, "builder", secret)
    assert by_name.status_code == 429, by_name.text
    elsewhere = http.get(
        "/oauth2/token", headers={**basic(identity.id, secret), "Host": "contoso.example"}
    )
    assert elsewhere.status_code == 429
    # Another address is not locked out, and unknown names still count per name.
    assert token_get(Client(services, "192.0.2.2"), "builder", secret).status_code == 200
    for _ in range(3):
        assert token_get(http, "ghost", "wrong").status_code == 401
    assert token_get(http, "ghost", "wrong").status_code == 429


def test_undecodable_basic_credentials_are_a_401_in_oci_shape(services) -> None:
    http = Client(services)
    for value in (b"Basic \xff\xff", b"Basic //79", b"Basic !!"):
        response = http.get("/v2/", headers={"Authorization": value})
        assert response.status_code == 401, (value, response.text)
        assert response.json()["errors"][0]["code"] == "UNAUTHORIZED"
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")


# -- refresh tokens --------------------------------------------------------------------------------


def test_refresh_tokens_die_with_the_admin_password_they_were_issued_with(services) -> None:
    http = Client(services)
    first = offline_token(http, "dockyard", ADMIN_PASSWORD)
    second = services.administration.admin_credentials(registry(services)).passwords["password2"]
    by_second = offline_token(http, "dockyard", second)
    # The null-GUID login re-issues a refresh token: it stays bound to the same password.
    chained = http.get(
        "/oauth2/token",
        params={"service": HOST, "offline_token": "true"},
        headers=basic(NULL_GUID, first),
    ).json()["refresh_token"]
    assert redeem(http, first).status_code == 200
    services.administration.regenerate_admin_password(registry(services), "password")
    for refresh in (first, chained):
        refused = redeem(http, refresh)
        assert refused.status_code == 401, refused.text
        assert "password" in refused.json()["error_description"]
    assert redeem(http, by_second).status_code == 200  # the other password's stand


def test_refresh_tokens_die_with_the_token_password_they_were_issued_with(services) -> None:
    http = Client(services)
    user, password1 = pusher(services)
    first = offline_token(http, user, password1)
    password2 = services.administration.regenerate_token_password(
        registry(services), user, "password2"
    )
    second = offline_token(http, user, password2)
    assert redeem(http, first).status_code == 200
    services.administration.regenerate_token_password(registry(services), user, "password1")
    assert redeem(http, first).status_code == 401
    assert redeem(http, second).status_code == 200
    services.administration.delete_token(registry(services), user)
    pusher(services)  # a new token of the same name
    assert redeem(http, second).status_code == 401


# -- /v2/ and its challenges -----------------------------------------------------------------------


def test_v2_challenges_anonymous_callers_even_with_anonymous_pull(services) -> None:
    http = Client(services)
    services.administration.set_anonymous_pull(registry(services), True)
    base = http.get("/v2/")
    assert base.status_code == 401
    assert base.headers["WWW-Authenticate"].startswith(f'Bearer realm="http://{HOST}/oauth2/token"')
    anonymous = http.get("/oauth2/token", params={"service": HOST, "scope": "repository:a:pull"})
    assert anonymous.status_code == 200, anonymous.text
    token = anonymous.json()["access_token"]
    assert access_of(token) == {("repository", "a"): ["pull"]}
    assert http.get("/v2/", headers=bearer(token)).status_code == 200
    assert http.get("/v2/a/tags/list", headers=bearer(token)).status_code == 404  # not 401


def test_the_mount_challenge_names_the_source_and_a_token_without_it_uploads(
    services,
) -> None:
    http = Client(services)
    blob = b"a layer"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    admin = basic("dockyard", ADMIN_PASSWORD)
    pushed = http.post(f"/v2/team/src/blobs/uploads/?digest={digest}", content=blob, headers=admin)
    assert pushed.status_code == 201
    path = f"/v2/dest/blobs/uploads/?mount={digest}&from=team/src"
    challenge = http.post(path).headers["WWW-Authenticate"]
    assert 'scope="repository:dest:push,pull repository:team/src:pull"' in challenge
    scopes = challenge.partition('scope="')[2].partition('"')[0].split(" ")
    both = token_get(http, "dockyard", ADMIN_PASSWORD, *scopes).json()["access_token"]
    assert http.post(path, headers=bearer(both)).status_code == 201
    odd = http.post(f"/v2/dest/blobs/uploads/?mount={digest}&from=a%22b")
    assert 'scope="repository:dest:push,pull"' in odd.headers["WWW-Authenticate"]
    services.administration.put_scope_map(
        registry(services), "dest", ["repositories/dest/content/write"]
    )
    credentials = services.administration.create_token(registry(services), "push-only", "dest")
    token = token_get(
        http,
        "push-only",
        credentials.passwords["password1"],
        "repository:dest:push,pull",
        "repository:team/src:pull",
    ).json()["access_token"]
    assert access_of(token)[("repository", "team/src")] == []
    started = http.post(path, headers=bearer(token))
    assert started.status_code == 202, started.text


# -- the token endpoints' errors ------------------------------------------------------------------


def oauth_error(response: httpx.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    assert body["error_codes"] and all(isinstance(c, int) for c in body["error_codes"])
    assert body["errors"][0]["message"]  # ACR's shape beside OAuth's: the ACR SDK reads it
    return body


def test_every_token_endpoint_answers_oauth_errors(services) -> None:
    http = Client(services)
    oauth_error(token_get(http, "dockyard", "wrong"), 401, "invalid_client")
    oauth_error(http.get("/oauth2/token", params={"service": HOST}), 401, "invalid_client")
    oauth_error(
        http.post("/oauth2/token", data={"grant_type": "magic"}), 400, "unsupported_grant_type"
    )
    oauth_error(redeem(http, "not-a-token"), 401, "invalid_grant")
    client = {"grant_type": "client_credentials", "client_id": "x", "client_secret": "y"}
    oauth_error(http.post("/oauth2/token", data=client), 401, "invalid_client")
    v2 = "/oauth2/v2.0/token"
    oauth_error(http.post(v2, data=client), 400, "invalid_scope")
    arm = {**client, "scope": "https://management.azure.com/.default"}
    oauth_error(http.post(v2, data=arm), 401, "invalid_client")
    oauth_error(
        http.post(v2, data={**arm, "grant_type": "password"}), 400, "unsupported_grant_type"
    )
    oauth_error(
        http.post("/oauth2/exchange", data={"grant_type": "nope"}), 400, "unsupported_grant_type"
    )
    oauth_error(
        http.post("/oauth2/exchange", data={"grant_type": "access_token", "access_token": "x"}),
        401,
        "invalid_grant",
    )
    for _ in range(3):
        token_get(http, "dockyard", "wrong")
    locked = token_get(http, "dockyard", "wrong")
    assert int(locked.headers["Retry-After"]) > 0
    oauth_error(locked, 429, "temporarily_unavailable")


def test_exchange_refuses_a_registry_access_token_for_what_it_is(services) -> None:
    http = Client(services)
    access = token_get(http, "dockyard", ADMIN_PASSWORD, "repository:a:pull").json()
    refused = http.post(
        "/oauth2/exchange",
        data={"grant_type": "access_token", "service": HOST, "access_token": access["token"]},
    )
    body = oauth_error(refused, 401, "invalid_grant")
    assert "another registry" not in body["error_description"]
    assert "identity token" in body["error_description"]
