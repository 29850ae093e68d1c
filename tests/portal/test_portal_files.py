"""Inside an image in the portal (in process): one layer's directory, the merged
image's with OCI's whiteouts applied (a file hidden, an opaque directory, a file
replaced), a file's text and its download; only for callers who may pull."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator

import images
import pytest
from endpoint import AppEndpoint
from test_portal_pages import ADMIN_PASSWORD, _basic, sign_in

from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings

REPO = "inside/app"


def layer(*members: tuple[str, bytes | None]) -> bytes:
    """A gzipped tar of (path, content) entries; None content is a directory."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in members:
            info = tarfile.TarInfo(path)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


BASE = layer(
    ("etc", None),
    ("etc/os-release", b'ID=debian\nVERSION_ID="12"\n'),
    ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n"),
    ("usr/bin/tool", b"\x7fELF old"),
    ("var/cache/old", b"cached"),
)
TOP = layer(
    ("etc/.wh.passwd", b""),
    ("etc/motd", b"welcome\n"),
    ("var/cache/.wh..wh..opq", b""),
    ("var/cache/new", b"fresh"),
    ("usr/bin/tool", b"\x7fELF\x00new binary"),
)


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppEndpoint]:
    settings = load_settings(
        None, data_dir=tmp_path_factory.mktemp("files"), admin_password=ADMIN_PASSWORD
    )
    prepare(settings)
    found = AppEndpoint(build_services(settings))
    config = images.json_bytes(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    with found.client() as http:
        http.headers.update(_basic("dockyard", ADMIN_PASSWORD))
        for blob in (config, BASE, TOP):
            digest = images.sha256_digest(blob)
            done = http.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", content=blob)
            assert done.status_code == 201, done.text
        manifest = images.json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": images.OCI_MANIFEST,
                "config": images.descriptor(images.OCI_CONFIG, config),
                "layers": [images.descriptor(images.OCI_LAYER_GZIP, b) for b in (BASE, TOP)],
            }
        )
        put = http.put(
            f"/v2/{REPO}/manifests/v1",
            content=manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert put.status_code == 201, put.text
    found.digest = images.sha256_digest(manifest)  # type: ignore[attr-defined]
    yield found
    found.close()


def files_url(endpoint: AppEndpoint, kind: str = "_files") -> str:
    return f"/portal/r/dockyard/repo/{REPO}/_manifest/{endpoint.digest}/{kind}"  # type: ignore[attr-defined]


def names(html: str) -> list[str]:
    rows = html.split("<tbody>")[1].split("</tbody>")[0] if "<tbody>" in html else ""
    found = []
    for row in rows.split("<tr>")[1:]:
        cell = row.split('<th scope="row">')[1].split("</th>")[0]
        found.append(cell.split(">")[1].split("<")[0].strip() if "<a" in cell else cell.strip())
    return found


def test_the_merged_image_applies_whiteouts(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        root = http.get(files_url(endpoint))
        assert root.status_code == 200, root.text
        assert names(root.text) == ["etc/", "usr/", "var/"]
        assert names(http.get(files_url(endpoint), params={"path": "etc"}).text) == [
            "motd",
            "os-release",
        ]
        assert names(http.get(files_url(endpoint), params={"path": "var/cache"}).text) == ["new"]
        tool = http.get(files_url(endpoint), params={"path": "usr/bin"}).text
        assert names(tool) == ["tool"] and "<td>2</td>" in tool  # from the top layer


def test_one_layer_shows_its_own_entries(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        base = http.get(files_url(endpoint), params={"path": "etc", "layer": "1"})
        assert names(base.text) == ["os-release", "passwd"]
        top = http.get(files_url(endpoint), params={"path": "var/cache", "layer": "2"})
        assert names(top.text) == ["new"]
        wrong = http.get(files_url(endpoint), params={"layer": "3"})
        assert wrong.status_code == 400


def test_a_files_text_and_download(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        text = http.get(files_url(endpoint, "_file"), params={"path": "etc/os-release", "layer": 1})
        assert text.status_code == 200
        assert "ID=debian" in text.text
        binary = http.get(files_url(endpoint, "_file"), params={"path": "usr/bin/tool", "layer": 2})
        assert "A binary file" in binary.text
        download = http.get(
            files_url(endpoint, "_file"),
            params={"path": "usr/bin/tool", "layer": 2, "download": 1},
        )
        assert download.status_code == 200
        assert download.content == b"\x7fELF\x00new binary"
        assert "attachment" in download.headers["content-disposition"]
        missing = http.get(files_url(endpoint, "_file"), params={"path": "etc/nope", "layer": 1})
        assert missing.status_code == 404


def test_files_need_the_pull_right(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    identity, secret = services.administration.create_identity("files-lister")
    registry = services.registries.all()[0]
    services.administration.assign_role(
        registry, identity.id, "Container Registry Repository Catalog Lister"
    )
    with endpoint.client() as http:
        assert sign_in(http, identity.id, secret).status_code == 303
        for kind, params in (("_files", {}), ("_file", {"path": "etc/passwd", "layer": 1})):
            response = http.get(files_url(endpoint, kind), params=params)
            assert response.status_code == 403
            assert "root:x" not in response.text


def test_a_layer_that_is_no_tar_is_a_400_page(endpoint: AppEndpoint) -> None:
    manifest, _ = endpoint.push_small_image(
        "inside/random", "v1", headers=_basic("dockyard", ADMIN_PASSWORD)
    )
    digest = images.sha256_digest(manifest)
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        response = http.get(f"/portal/r/dockyard/repo/inside/random/_manifest/{digest}/_files")
        assert response.status_code == 400
        assert "is not a tar archive" in response.text


def test_two_tags_compared(endpoint: AppEndpoint) -> None:
    top = layer(("etc/motd", b"changed\n"), ("etc/new-file", b"x"), ("usr/bin/.wh.tool", b""))
    config = images.json_bytes({"architecture": "amd64", "os": "linux"})
    with endpoint.client() as http:
        http.headers.update(_basic("dockyard", ADMIN_PASSWORD))
        for blob in (config, top):
            digest = images.sha256_digest(blob)
            assert http.post(f"/v2/{REPO}/blobs/uploads/?digest={digest}", content=blob).is_success
        manifest = images.json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": images.OCI_MANIFEST,
                "config": images.descriptor(images.OCI_CONFIG, config),
                "layers": [images.descriptor(images.OCI_LAYER_GZIP, b) for b in (BASE, top)],
            }
        )
        put = http.put(
            f"/v2/{REPO}/manifests/v2",
            content=manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert put.status_code == 201, put.text
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        page = http.get(
            f"/portal/r/dockyard/repo/{REPO}/_compare", params={"from": "v1", "to": "v2"}
        )
        assert page.status_code == 200, page.text
        text = page.text

        def section(title: str) -> str:
            return text.split(f">{title}</h2>")[1].split("</section>")[0]

        assert "3 added, 2 removed, 1 changed" in text
        added, removed, changed = (
            section("Added files"),
            section("Removed files"),
            section("Changed files"),
        )
        for path in ("/etc/new-file", "/etc/passwd", "/var/cache/old"):
            assert path in added
        for path in ("/usr/bin/tool", "/var/cache/new"):
            assert path in removed
        assert "/etc/motd" in changed and "content" in changed
        assert "No package changed." in text
        missing = http.get(f"/portal/r/dockyard/repo/{REPO}/_compare", params={"from": "v1"})
        assert missing.status_code == 400


def test_a_quarantined_image_is_read_only_by_quarantine_readers(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    identity, secret = services.administration.create_identity("files-reader")
    services.administration.assign_role(registry, identity.id, "Reader")
    services.quarantine.set_enabled(registry, True)
    try:
        with endpoint.client() as reader, endpoint.client() as admin:
            assert sign_in(reader, identity.id, secret).status_code == 303
            sign_in(admin, "dockyard", ADMIN_PASSWORD)
            refused = reader.get(files_url(endpoint), params={"path": "etc"})
            assert refused.status_code == 403
            assert "os-release" not in refused.text
            manifest = reader.get(files_url(endpoint).removesuffix("/_files"))
            assert manifest.status_code == 200
            assert "A pull of this manifest by you is refused" in manifest.text
            allowed = admin.get(files_url(endpoint), params={"path": "etc"})
            assert allowed.status_code == 200 and "os-release" in allowed.text
    finally:
        services.quarantine.set_enabled(registry, False)
