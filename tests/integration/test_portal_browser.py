"""The portal in a real browser: Playwright for Python driving Debian's `chromium`
(`make install` installs it; no browser is downloaded) against a real `dockyard serve`
with logins on and an image pushed. One browser for the module; a screenshot of each
page goes to the test's directory and to `test-artifacts/portal/` (ignored by git).

Sign in, browse registries -> repository -> manifest -> the image's files -> a file,
compare two tags, lock a tag and see a push to it refused, delete a tag, sign out; a
Reader identity sees the same pages and is refused every change, also when it signs in
at an OpenID Connect issuer (oidc-provider-mock on loopback); an Owner identity
creates a webhook and pings it (a receiver on loopback), opens the replications and
the audit log, creates a scope map and a token (its passwords shown once), edits the
scope map's actions and generates a new password (the token logs in with what each
allows, and its old password no longer does)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer, printed
from oidc_provider_mock import run_server_in_thread
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ADMIN_PASSWORD = "portal-browser-admin"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"
REPO = "team/app"


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    """A real OpenID Connect provider on loopback, whose users sign in by subject."""
    with run_server_in_thread() as provider:
        yield f"http://localhost:{provider.server_port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, issuer: str) -> Iterator[RegistryServer]:
    base = tmp_path_factory.mktemp("portal")
    trusted = {
        "issuer": issuer,
        "jwks_url": f"{issuer}/jwks",
        "portal_client_id": "dockyard-portal",
        "portal_client_secret": "portal-browser-client-secret",
        "display_name": "Example IdP",
    }
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(),
        env={
            "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DOCKYARD_AUTH__OIDC": json.dumps([trusted]),
        },
    ).start() as found:
        image = images.busybox_image("amd64")
        with found.client() as http:
            http.auth = httpx.BasicAuth("dockyard", ADMIN_PASSWORD)
            for data in image.blobs.values():
                digest = images.sha256_digest(data)
                done = http.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", content=data)
                assert done.status_code == 201, done.text
            for tag in ("v1", "v2"):
                pushed = http.put(
                    f"/v2/{REPO}/manifests/{tag}",
                    content=image.manifest,
                    headers={"Content-Type": image.media_type},
                )
                assert pushed.status_code == 201, pushed.text
        yield found


@pytest.fixture(scope="module")
def reader(server: RegistryServer) -> tuple[str, str]:
    output = server.admin("identity", "create", "portal-reader")
    server.manage(
        "role",
        "assignment",
        "create",
        "--assignee",
        "portal-reader",
        "--role",
        "Reader",
        "-r",
        "dockyard",
    )
    return printed(output, "username"), printed(output, "secret")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        raise RuntimeError("chromium is not installed (Debian package 'chromium')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(15_000)
    context.route("**/*", _loopback_only)  # the test issuer's page names a CDN stylesheet
    found = context.new_page()
    yield found
    context.close()


def _loopback_only(route: Route) -> None:
    host = route.request.url.split("/")[2].rsplit(":", 1)[0]
    if host in ("localhost", "127.0.0.1", "[::1]"):
        route.continue_()
    else:
        route.abort()


def shoot(page: Page, tmp_path: Path, name: str) -> None:
    """A screenshot of the whole page, kept with the test and in the artefacts."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, ARTIFACTS / path.name)


def sign_in(page: Page, server: RegistryServer, user: str, password: str) -> None:
    page.goto(f"{server.url}/portal/")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.get_by_label("User name or client id").fill(user)
    page.get_by_label("Password or secret").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Registries")).to_be_visible()


def push_refused(server: RegistryServer, tag: str) -> int:
    image = images.busybox_image("arm64")
    with server.client() as http:
        http.auth = httpx.BasicAuth("dockyard", ADMIN_PASSWORD)
        for data in image.blobs.values():
            digest = images.sha256_digest(data)
            http.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", content=data)
        response = http.put(
            f"/v2/{REPO}/manifests/{tag}",
            content=image.manifest,
            headers={"Content-Type": image.media_type},
        )
    return response.status_code


def token_reads(server: RegistryServer, user: str, password: str) -> tuple[int, int]:
    """What a client logging in as the token gets: a pull of the manifest (content/read)
    and the repository's tags list (metadata/read)."""
    with server.client() as http:
        http.auth = httpx.BasicAuth(user, password)
        pulled = http.get(f"/v2/{REPO}/manifests/v1")
        listed = http.get(f"/acr/v1/{REPO}/_tags")
    return pulled.status_code, listed.status_code


def test_browse_lock_a_tag_and_sign_out(server: RegistryServer, page: Page, tmp_path) -> None:
    page.goto(f"{server.url}/portal/signin")
    shoot(page, tmp_path, "signin")
    sign_in(page, server, "dockyard", ADMIN_PASSWORD)
    expect(page.locator("meter").first).to_be_visible()
    expect(page.get_by_text("Premium")).to_be_visible()
    shoot(page, tmp_path, "registries")

    page.get_by_role("link", name="dockyard", exact=True).click()
    expect(page.get_by_role("heading", name="Repositories of dockyard")).to_be_visible()
    page.get_by_label("Name starts with").fill("team")
    expect(page).to_have_url(f"{server.url}/portal/r/dockyard/?prefix=team&sort=name")
    shoot(page, tmp_path, "repositories")

    page.get_by_role("link", name=REPO).click()
    expect(page.get_by_role("heading", name=REPO)).to_be_visible()
    expect(page.get_by_role("row", name="v1")).to_be_visible()
    shoot(page, tmp_path, "repository")

    switch = page.get_by_role("switch", name="Lock v1 against writes")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    locked = page.get_by_role("switch", name="Lock v1 against writes")
    expect(locked).to_have_attribute("aria-checked", "true")
    assert push_refused(server, "v1") == 403
    assert push_refused(server, "v2") == 201  # only the locked tag refuses

    page.get_by_role("row", name="v1").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Layers")).to_be_visible()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    expect(page.get_by_text("not quarantined")).to_be_visible()
    expect(page.get_by_text("Not scanned.")).to_be_visible()
    shoot(page, tmp_path, "manifest")

    page.get_by_role("link", name="Browse the image's files").click()
    expect(page.get_by_role("heading", name="Files: the merged image")).to_be_visible()
    page.get_by_role("link", name="bin/").click()
    expect(page.get_by_role("row", name="sh")).to_contain_text("symlink")
    shoot(page, tmp_path, "files")
    page.get_by_role("link", name="busybox", exact=True).click()
    expect(page.get_by_role("heading", name="/bin/busybox")).to_be_visible()
    expect(page.get_by_text("A binary file")).to_be_visible()
    shoot(page, tmp_path, "file")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download").click()
    assert Path(download.value.path()).read_bytes()[:4] == b"\x7fELF"

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name=REPO).click()
    page.get_by_label("Compare tag").fill("v1")
    page.get_by_label("with tag").fill("v2")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", name=f"{REPO}: v1 → v2")).to_be_visible()
    expect(page.get_by_role("heading", name="Changed files")).to_be_visible()
    shoot(page, tmp_path, "compare")

    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name=REPO).click()
    page.get_by_role("link", name="Delete tag v2").click()
    expect(page.get_by_role("heading", name="Delete tag v2?")).to_be_visible()
    shoot(page, tmp_path, "confirm-delete")
    page.get_by_role("button", name="Delete v2").click()
    expect(page.get_by_text("Tag v2 deleted.")).to_be_visible()
    expect(page.get_by_role("row", name="v2")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()
    page.goto(f"{server.url}/portal/r/dockyard/")
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()


def test_a_reader_cannot_change_anything(
    server: RegistryServer, reader: tuple[str, str], page: Page, tmp_path
) -> None:
    sign_in(page, server, *reader)
    page.goto(f"{server.url}/portal/r/dockyard/repo/{REPO}")
    expect(
        page.get_by_text("You may read this repository but not change its tags.")
    ).to_be_visible()
    expect(page.get_by_role("link", name="Delete tag v1")).to_have_count(0)
    switch = page.get_by_role("switch", name="Lock v1 against deletes")
    expect(switch).to_have_attribute("aria-checked", "false")
    switch.click()
    expect(page.get_by_role("alert")).to_contain_text("Not allowed")
    expect(page.get_by_role("switch", name="Lock v1 against deletes")).to_have_attribute(
        "aria-checked", "false"
    )
    shoot(page, tmp_path, "reader-refused")
    page.goto(f"{server.url}/portal/r/dockyard/repo/{REPO}/_tag/v1/delete")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    with server.client() as http:
        http.auth = httpx.BasicAuth("dockyard", ADMIN_PASSWORD)
        tag = http.get(f"/acr/v1/{REPO}/_tags/v1").json()["tag"]
    assert tag["changeableAttributes"]["deleteEnabled"] is True


def test_an_identity_signs_in_at_its_organisation_s_issuer(
    server: RegistryServer, reader: tuple[str, str], page: Page, tmp_path
) -> None:
    """The Reader identity signs in at the issuer (its subject names the identity), and
    has its own rights in the portal, no more."""
    page.goto(f"{server.url}/portal/r/dockyard/")
    shoot(page, tmp_path, "signin")
    page.get_by_role("link", name="Sign in with Example IdP").click()
    expect(page.get_by_role("heading", name="Authorize Client")).to_be_visible()
    page.get_by_placeholder("sub").fill("portal-reader")
    page.get_by_role("button", name="Authorize").click()
    expect(page.get_by_role("heading", name="Repositories of dockyard")).to_be_visible()
    expect(page.get_by_text("Signed in as portal-reader")).to_be_visible()
    page.goto(f"{server.url}/portal/r/dockyard/repo/{REPO}")
    expect(
        page.get_by_text("You may read this repository but not change its tags.")
    ).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in", exact=True)).to_be_visible()


class _Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return


def test_an_owner_creates_and_pings_a_webhook(server: RegistryServer, page: Page, tmp_path) -> None:
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        sign_in(page, server, *server.owner())
        page.get_by_role("link", name="Webhooks").click()
        expect(page.get_by_role("heading", name="Webhooks of dockyard")).to_be_visible()
        page.get_by_label("Name (5-50 letters or digits)").fill("portalping")
        page.get_by_label("Service URI").fill(f"http://127.0.0.1:{receiver.server_address[1]}/")
        page.get_by_label("delete", exact=True).check()
        page.get_by_role("button", name="Create webhook").click()
        expect(page.get_by_role("heading", name="Webhook portalping")).to_be_visible()
        page.get_by_role("button", name="Ping").click()
        delivery = page.get_by_role("row", name="ping")
        expect(delivery).to_contain_text("200")
        delivery.get_by_text("Show").click()
        shoot(page, tmp_path, "webhook")
        page.goto(f"{server.url}/portal/r/dockyard/replications")
        expect(page.get_by_role("row", name="(home)")).to_be_visible()
        shoot(page, tmp_path, "replications")
        page.goto(f"{server.url}/portal/r/dockyard/audit")
        page.get_by_label("Action").select_option("Push")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("heading", name="Audit log of dockyard")).to_be_visible()
        expect(page.get_by_label("Action")).to_have_value("Push")
        shoot(page, tmp_path, "audit")
        page.goto(f"{server.url}/portal/r/dockyard/access")
        page.get_by_text("New scope map").click()
        page.locator("#map-name").fill("portalmap")
        page.get_by_label("Actions, one a line").fill(f"repositories/{REPO}/content/read")
        page.get_by_role("button", name="Create scope map").click()
        page.get_by_text("New token").click()
        page.locator("#token-name").fill("portaltoken")
        page.locator("#token-map").fill("portalmap")
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_role("heading", name="Token portaltoken created")).to_be_visible()
        shoot(page, tmp_path, "token-created")
        first = page.locator("dt:text-is('password1') + dd code").inner_text()
        second = page.locator("dt:text-is('password2') + dd code").inner_text()
        assert token_reads(server, "portaltoken", first) == (200, 403)  # no metadata/read

        page.goto(f"{server.url}/portal/r/dockyard/access")
        page.get_by_text("Edit… scope map portalmap").click()
        page.get_by_label("Actions of portalmap, one a line").fill(
            f"repositories/{REPO}/content/read\nrepositories/{REPO}/metadata/read"
        )
        shoot(page, tmp_path, "scope-map-edit")
        page.get_by_role("button", name="Save scope map portalmap").click()
        expect(page.get_by_role("status")).to_contain_text("Scope map portalmap saved.")
        assert token_reads(server, "portaltoken", second) == (200, 200)

        page.get_by_role("link", name="portaltoken", exact=True).click()
        expect(page.get_by_role("heading", name="Token portaltoken")).to_be_visible()
        page.get_by_label("Password", exact=True).select_option("password1")
        page.get_by_label("Expires on").fill("2999-01-31")
        page.get_by_role("button", name="Generate password").click()
        expect(
            page.get_by_role("heading", name="New password1 of token portaltoken")
        ).to_be_visible()
        shoot(page, tmp_path, "token-password")
        made = page.locator("#new-password").inner_text()
        assert token_reads(server, "portaltoken", made) == (200, 200)
        assert token_reads(server, "portaltoken", first) == (401, 401)
        expect(page.get_by_role("row", name="password1")).to_contain_text("2999-01-31")
    finally:
        receiver.shutdown()
        receiver.server_close()
