"""The portal in the test's own process (httpx over the ASGI app, logins on): the
session cookie's flags, CSRF refusals, and 403 pages for callers without the right,
with the same decisions as the APIs (a Reader reads, never changes)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import images
import pytest
from endpoint import AppEndpoint

from dockyard.metadata.scanning import put_scan
from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings

ADMIN_PASSWORD = "portal-admin-secret"


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppEndpoint]:
    settings = load_settings(
        None, data_dir=tmp_path_factory.mktemp("portal"), admin_password=ADMIN_PASSWORD
    )
    prepare(settings)
    found = AppEndpoint(build_services(settings))
    found.push_small_image("team/app", "v1", headers=_basic("dockyard", ADMIN_PASSWORD))
    yield found
    found.close()


@pytest.fixture(scope="module")
def reader(endpoint: AppEndpoint) -> tuple[str, str]:
    """An identity with the Reader role on the registry: its client id and secret."""
    services = endpoint.services
    identity, secret = services.administration.create_identity("portal-reader")
    registry = services.registries.all()[0]
    services.administration.assign_role(registry, identity.id, "Reader")
    return identity.id, secret


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + httpx.BasicAuth(user, password)._auth_header.split()[1]}


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def sign_in(http: httpx.Client, user: str, password: str) -> httpx.Response:
    form = http.get("/portal/signin")
    assert form.status_code == 200
    return http.post(
        "/portal/signin",
        data={"csrf": _csrf(form.text), "username": user, "password": password},
    )


def test_pages_need_a_session(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        response = http.get("/portal/r/dockyard/")
        assert response.status_code == 303
        assert response.headers["location"] == "/portal/signin?next=/portal/r/dockyard/"


def test_the_session_cookie_is_httponly_lax_and_scoped(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        response = sign_in(http, "dockyard", ADMIN_PASSWORD)
        assert response.status_code == 303
        cookie = next(
            v
            for k, v in response.headers.multi_items()
            if k == "set-cookie" and v.startswith("dockyard_portal=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert "httponly" in flags
        assert "samesite=lax" in flags
        assert "path=/portal" in flags
        assert "secure" not in flags  # plain HTTP here; TLS adds Secure
        assert ADMIN_PASSWORD not in cookie
        page = http.get("/portal/")
        assert page.status_code == 200
        assert "Premium" in page.text and "<meter" in page.text


def test_a_wrong_password_is_refused(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        response = sign_in(http, "dockyard", "wrong")
        assert response.status_code == 401
        assert "Incorrect user name or password." in response.text
        assert "dockyard_portal=" not in response.headers.get("set-cookie", "")


def test_sign_in_without_its_csrf_token_is_refused(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        http.get("/portal/signin")
        response = http.post(
            "/portal/signin",
            data={"csrf": "forged", "username": "dockyard", "password": ADMIN_PASSWORD},
        )
        assert response.status_code == 403
        assert "dockyard_portal=" not in response.headers.get("set-cookie", "")


def test_a_post_without_the_sessions_csrf_token_changes_nothing(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        url = "/portal/r/dockyard/repo/team/app/_tag/v1/locks"
        for attempt in ({}, {"csrf": "forged"}):
            response = http.post(url, data={"writeEnabled": "false", **attempt})
            assert response.status_code == 403
        header = http.post(url, data={"writeEnabled": "false"}, headers={"X-CSRF-Token": "no"})
        assert header.status_code == 403
        tag = endpoint.services.properties.tag(
            endpoint.services.registries.all()[0], "team/app", "v1"
        )
        assert tag.locks.write_enabled


def test_the_admin_locks_a_tag_with_its_token(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        page = http.get("/portal/r/dockyard/repo/team/app")
        assert page.status_code == 200
        url = "/portal/r/dockyard/repo/team/app/_tag/v1/locks"
        token = _csrf(page.text)
        locked = http.post(
            url,
            data={"writeEnabled": "false"},
            headers={"X-CSRF-Token": token, "HX-Request": "true"},
        )
        assert locked.status_code == 200
        assert 'aria-checked="true"' in locked.text
        registry = endpoint.services.registries.all()[0]
        assert not endpoint.services.properties.tag(registry, "team/app", "v1").locks.write_enabled
        opened = http.post(url, data={"writeEnabled": "true", "csrf": token})
        assert opened.status_code == 303
        assert endpoint.services.properties.tag(registry, "team/app", "v1").locks.write_enabled


def test_a_reader_sees_but_cannot_change(endpoint: AppEndpoint, reader) -> None:
    client_id, secret = reader
    with endpoint.client() as http:
        assert sign_in(http, client_id, secret).status_code == 303
        page = http.get("/portal/r/dockyard/repo/team/app")
        assert page.status_code == 200
        assert "may read this repository but not change" in page.text
        token = _csrf(page.text)
        lock = http.post(
            "/portal/r/dockyard/repo/team/app/_tag/v1/locks",
            data={"writeEnabled": "false"},
            headers={"X-CSRF-Token": token, "HX-Request": "true"},
        )
        assert lock.status_code == 403
        assert "may not metadata_write" in lock.text
        confirm = http.get("/portal/r/dockyard/repo/team/app/_tag/v1/delete")
        assert confirm.status_code == 403
        delete = http.post("/portal/r/dockyard/repo/team/app/_tag/v1/delete", data={"csrf": token})
        assert delete.status_code == 403
        assert "Not allowed" in delete.text
    registry = endpoint.services.registries.all()[0]
    tag = endpoint.services.properties.tag(registry, "team/app", "v1")
    assert tag.locks.write_enabled


def test_no_right_no_data(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    identity, secret = services.administration.create_identity("portal-nobody")
    with endpoint.client() as http:
        assert sign_in(http, identity.id, secret).status_code == 303
        registries = http.get("/portal/")
        assert registries.status_code == 200
        assert "You have no rights in any registry." in registries.text
        for path in (
            "/portal/r/dockyard/",
            "/portal/r/dockyard/repo/team/app",
            "/portal/r/nosuch/",
        ):
            response = http.get(path)
            assert response.status_code == 403, path
            assert "Not allowed" in response.text
            assert "sha256:" not in response.text and "<table" not in response.text


def test_over_tls_the_session_cookie_is_secure(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        http.base_url = httpx.URL("https://localhost:5000")
        response = sign_in(http, "dockyard", ADMIN_PASSWORD)
        assert response.status_code == 303
        cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
        session = next(c for c in cookies if c.startswith("dockyard_portal="))
        assert "secure" in {part.strip().lower() for part in session.split(";")}


def test_a_manifest_shows_platforms_referrers_and_filtered_findings(
    endpoint: AppEndpoint,
) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    admin = _basic("dockyard", ADMIN_PASSWORD)
    index = images.busybox_index()
    with endpoint.client() as http:
        http.headers.update(admin)
        for child in index.children:
            for data in child.blobs.values():
                digest = images.sha256_digest(data)
                http.post(f"/v2/team/multi/blobs/uploads/?digest={digest}", content=data)
            put = http.put(
                f"/v2/team/multi/manifests/{child.digest}",
                content=child.manifest,
                headers={"Content-Type": child.media_type},
            )
            assert put.status_code == 201, put.text
        put = http.put(
            "/v2/team/multi/manifests/latest",
            content=index.manifest,
            headers={"Content-Type": index.media_type},
        )
        assert put.status_code == 201, put.text
        amd64 = index.children[0]
        sbom = b'{"spdxVersion": "SPDX-2.3"}'
        empty = b"{}"
        for data in (sbom, empty):
            digest = images.sha256_digest(data)
            http.post(f"/v2/team/multi/blobs/uploads/?digest={digest}", content=data)
        referrer = images.json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": images.OCI_MANIFEST,
                "artifactType": "application/spdx+json",
                "config": images.descriptor(images.OCI_EMPTY, empty),
                "layers": [images.descriptor("application/spdx+json", sbom)],
                "subject": amd64.descriptor(),
            }
        )
        put = http.put(
            f"/v2/team/multi/manifests/{images.sha256_digest(referrer)}",
            content=referrer,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert put.status_code == 201, put.text
    findings = [
        {
            "advisory": advisory,
            "aliases": [],
            "ecosystem": "Debian",
            "package": package,
            "installed": "1.0",
            "fixed": "1.1",
            "severity": severity,
            "score": None,
            "purl": f"pkg:deb/debian/{package}@1.0",
            "location": "var/lib/dpkg/status",
        }
        for advisory, package, severity in (
            ("DSA-1", "openssl", "critical"),
            ("DSA-2", "zlib", "low"),
        )
    ]
    with services.meta.transaction() as tx:
        put_scan(tx, registry.id, amd64.digest, "team/multi", "critical", findings, None)
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        page = http.get(f"/portal/r/dockyard/repo/team/multi/_manifest/{index.digest}")
        assert page.status_code == 200
        assert "Platforms" in page.text
        assert "linux/amd64" in page.text and "linux/arm64" in page.text
        image = http.get(f"/portal/r/dockyard/repo/team/multi/_manifest/{amd64.digest}")
        assert image.status_code == 200
        assert "SBOM" in image.text and "application/spdx+json" in image.text
        assert "DSA-1" in image.text and "DSA-2" in image.text
        assert "2 findings" in image.text
        high = http.get(
            f"/portal/r/dockyard/repo/team/multi/_manifest/{amd64.digest}",
            params={"severity": "high"},
        )
        assert "DSA-1" in high.text and "DSA-2" not in high.text
        assert "Layers" in image.text and "History" in image.text
