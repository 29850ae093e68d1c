"""The portal's sign-in through a trusted OpenID Connect issuer, against a real one
(oidc-provider-mock: an authlib authorization server on loopback, which signs real RS256
ID tokens): the code flow with PKCE and nonce to a session whose rights are the
identity's; and each way it is refused: the issuer's own refusal, a callback this
browser did not start, a subject no identity answers to, an issuer that is down."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from endpoint import AppEndpoint
from oidc_provider_mock import run_server_in_thread

from dockyard.metadata.logins import LoginStore
from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings

CLIENT_ID = "dockyard-portal"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with run_server_in_thread() as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory, issuer: str) -> Iterator[AppEndpoint]:
    down = "http://127.0.0.1:9"  # nothing listens on the discard port
    settings = load_settings(
        None,
        data_dir=tmp_path_factory.mktemp("portal-oidc"),
        admin_password="portal-oidc-admin",
        auth={
            "oidc": [
                {
                    "issuer": issuer,
                    "jwks_url": f"{issuer}/jwks",
                    "portal_client_id": CLIENT_ID,
                    "portal_client_secret": "portal-client-secret",
                    "display_name": "Example IdP",
                },
                {"issuer": down, "jwks_url": f"{down}/jwks", "portal_client_id": CLIENT_ID},
            ]
        },
    )
    prepare(settings)
    found = AppEndpoint(build_services(settings))
    found.push_small_image("team/app", "v1", headers={"Authorization": _basic()})
    services = found.services
    identity, _ = services.administration.create_identity("alice")
    services.administration.assign_role(services.registries.all()[0], identity.id, "Reader")
    yield found
    found.close()


def _basic() -> str:
    return httpx.BasicAuth("dockyard", "portal-oidc-admin")._auth_header


def _at_issuer(start: httpx.Response, subject: str | None) -> str:
    """The browser at the issuer's authorization page: `subject` signs in (None denies);
    the URL the issuer sends the browser back to."""
    assert start.status_code == 303, start.text
    asked = start.headers["location"]
    query = parse_qs(urlsplit(asked).query)
    assert query["code_challenge_method"] == ["S256"] and query["client_id"] == [CLIENT_ID]
    assert query["nonce"] and query["state"] and query["scope"] == ["openid profile email"]
    with httpx.Client(timeout=10) as browser:
        assert browser.get(asked).status_code == 200  # the issuer's own form
        form = {"sub": subject} if subject else {"action": "deny"}
        answer = browser.post(asked, data=form)
    assert answer.status_code in (302, 303), answer.text
    back = answer.headers["location"]
    assert back.startswith("http://localhost:5000/portal/signin/oidc/callback?")
    return back


def test_the_sign_in_page_offers_the_issuers(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        page = http.get("/portal/signin?next=/portal/r/dockyard/")
    assert "Sign in with Example IdP" in page.text
    assert 'href="/portal/signin/oidc/0?next=/portal/r/dockyard/"' in page.text


def test_an_identity_signs_in_at_its_issuer(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        start = http.get("/portal/signin/oidc/0", params={"next": "/portal/r/dockyard/"})
        cookie = start.headers["set-cookie"]
        assert cookie.startswith("dockyard_portal_oidc=") and "HttpOnly" in cookie
        back = http.get(_at_issuer(start, "alice"))
        assert back.status_code == 303, back.text
        assert back.headers["location"] == "/portal/r/dockyard/"
        page = http.get("/portal/r/dockyard/")
        assert page.status_code == 200 and "alice" in page.text
        # a Reader: the identity's own rights, no more
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        refused = http.post(
            "/portal/r/dockyard/repo/team/app/_tag/v1/locks",
            data={"csrf": csrf.group(1), "writeEnabled": "false"},
        )
        assert refused.status_code == 403
    events = LoginStore(endpoint.services.meta).events(endpoint.services.registries.all()[0].id)
    assert any(e.method == "oidc" and e.identity == "alice" for e in events)


def test_the_issuer_s_refusal_is_shown(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        back = http.get(_at_issuer(http.get("/portal/signin/oidc/0"), None))
        assert back.status_code == 401
        assert "did not sign you in: access_denied" in back.text
        assert http.get("/portal/").status_code == 303  # still signed out


def test_a_callback_this_browser_did_not_start_is_refused(endpoint: AppEndpoint) -> None:
    with endpoint.client() as started:
        back = _at_issuer(started.get("/portal/signin/oidc/0"), "alice")
    with endpoint.client() as other:  # another browser, handed the callback (login CSRF)
        refused = other.get(back)
        assert refused.status_code == 403 and "did not start here" in refused.text
        assert other.get("/portal/").status_code == 303
    with endpoint.client() as http:  # a state of another sign-in
        http.get("/portal/signin/oidc/0")
        forged = back.replace("state=", "state=x")
        assert http.get(forged).status_code == 403


def test_a_subject_without_an_identity_is_refused(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        back = http.get(_at_issuer(http.get("/portal/signin/oidc/0"), "mallory"))
        assert back.status_code == 401 and "no identity here" in back.text
        assert http.get("/portal/").status_code == 303


def test_an_issuer_that_is_down_gives_a_page_not_a_500(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        page = http.get("/portal/signin/oidc/1")
        assert page.status_code == 502 and "cannot be reached" in page.text
        assert http.get("/portal/signin/oidc/7").status_code == 404
