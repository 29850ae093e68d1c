"""ACR's `/acr/v1/` API and its locks, in process with raw HTTP: every endpoint, the
JSON shapes field for field, `Link` pagination in ACR's exact form, `orderby`,
percent-encoded names and digests, and a table of what each lock refuses on `/v2` and
`/acr/v1`. (What skopeo shows of a lock: tests/integration/test_skopeo.py.)"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import images
import pytest
from endpoint import AppEndpoint

from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
CHANGEABLE = {"deleteEnabled", "writeEnabled", "readEnabled", "listEnabled"}
ALL_ENABLED = dict.fromkeys(CHANGEABLE, True)


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1, body
    return body["errors"][0]


def image_size(image: images.Image) -> int:
    return len(image.config) + sum(len(layer) for layer in image.layers)


def follow(http: httpx.Client, url: str, key: str, limit: int = 20) -> list[dict | str]:
    """Every item of a listing, following `Link` as the Azure SDK does: the text between
    the leading `<` and the first `>`, requested verbatim."""
    seen: list = []
    for _ in range(limit):
        response = http.get(url)
        assert response.status_code == 200, response.text
        seen += response.json()[key]
        link = response.headers.get("Link")
        if link is None:
            return seen
        assert link.startswith("<") and link.endswith('>; rel="next"'), link
        url = link[1 : link.index(">")]
    raise AssertionError(f"no last page after {limit}: {seen}")


def patch(http: httpx.Client, path: str, **attributes: bool) -> dict:
    response = http.patch(path, json=attributes)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppEndpoint]:
    """One registry for the module, logins off (as `dockyard serve --no-auth`); each test
    uses repositories of its own."""
    settings = load_settings(None, data_dir=tmp_path_factory.mktemp("acr"), auth={"enabled": False})
    prepare(settings)
    endpoint = AppEndpoint(build_services(settings))
    yield endpoint
    endpoint.close()


@pytest.fixture
def http(registry: AppEndpoint) -> Iterator[httpx.Client]:
    with registry.client() as client:
        yield client


@pytest.fixture(scope="module")
def pushed(registry) -> dict:
    """`acr/app`: image `v1` (amd64, OCI), Docker image `docker`, and index `multi` over
    amd64 and arm64."""
    amd, arm = images.busybox_image("amd64"), images.busybox_image("arm64")
    docker = images.busybox_image("amd64", docker=True)
    index = images.busybox_index()
    registry.push_image("acr/app", amd, "v1")
    registry.push_image("acr/app", docker, "docker")
    for child in index.children:
        registry.push_image("acr/app", child)
    response = registry.put_manifest("acr/app", "multi", index.manifest, index.media_type)
    assert response.status_code == 201, response.text
    return {"amd": amd, "arm": arm, "docker": docker, "index": index}


# -- repositories ----------------------------------------------------------------------------


def test_repository_attributes(registry, http, pushed) -> None:
    response = http.get("/acr/v1/acr/app", params={"api-version": "2021-07-01"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert list(body) == [
        "registry",
        "imageName",
        "createdTime",
        "lastUpdateTime",
        "manifestCount",
        "tagCount",
        "changeableAttributes",
    ]
    assert body["registry"] == registry.host  # the login server: the listen address here
    assert body["imageName"] == "acr/app"
    assert TIME.match(body["createdTime"]) and TIME.match(body["lastUpdateTime"])
    assert body["lastUpdateTime"] >= body["createdTime"]
    assert (body["manifestCount"], body["tagCount"]) == (4, 3)
    assert body["changeableAttributes"] == {**ALL_ENABLED, "teleportEnabled": False}


def test_percent_encoded_names_and_digests_are_accepted(http, pushed) -> None:
    digest = pushed["amd"].digest
    encoded = digest.replace(":", "%3A")
    assert http.get("/acr/v1/acr%2Fapp").json()["imageName"] == "acr/app"
    assert http.get("/acr/v1/acr%2fapp/_tags").json()["imageName"] == "acr/app"
    response = http.get(f"/acr/v1/acr%2Fapp/_manifests/{encoded}")
    assert response.json()["manifest"]["digest"] == digest
    assert http.get("/acr/v1/acr%2Fapp/_tags/v1").json()["tag"]["digest"] == digest
    # /v2 too, as the SDK sends it for blobs and manifests.
    manifest = http.get(f"/v2/acr%2Fapp/manifests/{encoded}")
    assert manifest.status_code == 200 and manifest.content == pushed["amd"].manifest


def test_catalog_pages_with_acrs_link(registry, http) -> None:
    for name in ("acr/cat/a", "acr/cat/b", "acr/cat/c"):
        registry.push_blob(name, name.encode())
    everything = http.get("/acr/v1/_catalog").json()["repositories"]
    assert {"acr/cat/a", "acr/cat/b", "acr/cat/c"} <= set(everything)
    first = http.get("/acr/v1/_catalog", params={"n": 1})
    assert first.json() == {"repositories": everything[:1]}
    assert first.headers["Link"] == (
        f'</acr/v1/_catalog?last={everything[0]}&n=1&orderby=>; rel="next"'
    )
    assert follow(http, "/acr/v1/_catalog?n=2", "repositories") == everything
    # /v2/_catalog links the same way (ACR's shape, incl. the empty orderby).
    v2 = http.get("/v2/_catalog", params={"n": 1})
    assert v2.headers["Link"] == f'</v2/_catalog?last={everything[0]}&n=1&orderby=>; rel="next"'


def test_repository_delete(registry, http) -> None:
    image = images.busybox_image("arm64")
    registry.push_image("acr/doomed", image, "a")
    registry.put_manifest("acr/doomed", "b", image.manifest, image.media_type)
    response = http.delete("/acr/v1/acr/doomed")
    assert response.status_code == 202
    assert response.json() == {"manifestsDeleted": [image.digest], "tagsDeleted": ["a", "b"]}
    gone = http.get("/acr/v1/acr/doomed")
    assert gone.status_code == 404 and error_of(gone)["code"] == "NAME_UNKNOWN"
    assert http.get(f"/v2/acr/doomed/manifests/{image.digest}").status_code == 404
    assert http.get(f"/v2/acr/doomed/blobs/{images.sha256_digest(image.config)}").status_code == 404
    assert "acr/doomed" not in http.get("/acr/v1/_catalog").json()["repositories"]
    again = http.delete("/acr/v1/acr/doomed")
    assert again.status_code == 404 and error_of(again)["code"] == "NAME_UNKNOWN"


# -- tags ------------------------------------------------------------------------------------


def test_tag_attributes(registry, http, pushed) -> None:
    body = http.get("/acr/v1/acr/app/_tags/v1", params={"api-version": "2021-07-01"}).json()
    assert list(body) == ["registry", "imageName", "tag"]
    assert (body["registry"], body["imageName"]) == (registry.host, "acr/app")
    tag = body["tag"]
    assert list(tag) == [
        "name",
        "digest",
        "createdTime",
        "lastUpdateTime",
        "signed",
        "changeableAttributes",
    ]
    assert (tag["name"], tag["digest"], tag["signed"]) == ("v1", pushed["amd"].digest, False)
    assert TIME.match(tag["createdTime"]) and TIME.match(tag["lastUpdateTime"])
    assert tag["changeableAttributes"] == ALL_ENABLED


def test_tag_list_and_digest_filter(http, pushed) -> None:
    body = http.get("/acr/v1/acr/app/_tags").json()
    assert list(body) == ["registry", "imageName", "tags"]
    assert [t["name"] for t in body["tags"]] == ["docker", "multi", "v1"]
    assert all(set(t["changeableAttributes"]) == CHANGEABLE for t in body["tags"])
    index = pushed["index"].digest
    on_index = http.get("/acr/v1/acr/app/_tags", params={"digest": index}).json()["tags"]
    assert [(t["name"], t["digest"]) for t in on_index] == [("multi", index)]


def test_tag_pages_link_and_orderby(registry, http) -> None:
    image = images.busybox_image("amd64")
    registry.push_image("acr/paged", image, "t0")
    names = ["t3", "t1", "t4", "t0", "t2"]  # pushed in this order (t0 moved last below)
    other = images.busybox_image("arm64")
    registry.push_image("acr/paged", other)
    for name in names:
        registry.put_manifest("acr/paged", name, image.manifest, image.media_type)
    registry.put_manifest("acr/paged", "t0", other.manifest, other.media_type)  # moves t0

    first = http.get("/acr/v1/acr/paged/_tags", params={"n": 2})
    assert [t["name"] for t in first.json()["tags"]] == ["t0", "t1"]
    assert first.headers["Link"] == '</acr/v1/acr/paged/_tags?last=t1&n=2&orderby=>; rel="next"'
    by_name = follow(http, "/acr/v1/acr/paged/_tags?n=2", "tags")
    assert [t["name"] for t in by_name] == sorted(names)

    newest = http.get("/acr/v1/acr/paged/_tags", params={"n": 2, "orderby": "timedesc"})
    assert newest.headers["Link"] == (
        '</acr/v1/acr/paged/_tags?last=t2&n=2&orderby=timedesc>; rel="next"'
    )
    by_time = follow(http, "/acr/v1/acr/paged/_tags?n=2&orderby=timedesc", "tags")
    assert [t["name"] for t in by_time] == ["t0", "t2", "t4", "t1", "t3"]
    times = [t["lastUpdateTime"] for t in by_time]
    assert times == sorted(times, reverse=True)
    oldest = follow(http, "/acr/v1/acr/paged/_tags?n=3&orderby=timeasc", "tags")
    assert [t["name"] for t in oldest] == ["t3", "t1", "t4", "t2", "t0"]
    # The digest filter stays in the link.
    on_image = http.get(
        "/acr/v1/acr/paged/_tags", params={"n": 1, "digest": image.digest, "orderby": ""}
    )
    assert on_image.headers["Link"] == (
        f"</acr/v1/acr/paged/_tags?last=t1&n=1&orderby=&digest={image.digest.replace(':', '%3A')}>"
        '; rel="next"'
    )
    filtered = follow(http, f"/acr/v1/acr/paged/_tags?n=1&digest={image.digest}", "tags")
    assert [t["name"] for t in filtered] == ["t1", "t2", "t3", "t4"]
    # n=0 is an empty page; a bad orderby is refused, not ignored.
    assert http.get("/acr/v1/acr/paged/_tags?n=0").json()["tags"] == []
    bad = http.get("/acr/v1/acr/paged/_tags", params={"orderby": "time_desc"})
    assert bad.status_code == 400 and error_of(bad)["code"] == "INVALID_REQUEST"


def test_tag_delete_untags_only(registry, http) -> None:
    image = images.busybox_image("arm64")
    registry.push_image("acr/untag", image, "a")
    response = http.delete("/acr/v1/acr/untag/_tags/a", params={"api-version": "2021-07-01"})
    assert response.status_code == 202 and response.content == b""
    assert http.get("/acr/v1/acr/untag/_tags/a").status_code == 404
    assert http.get(f"/acr/v1/acr/untag/_manifests/{image.digest}").status_code == 200
    again = http.delete("/acr/v1/acr/untag/_tags/a")
    assert again.status_code == 404 and error_of(again)["code"] == "MANIFEST_UNKNOWN"


# -- manifests -------------------------------------------------------------------------------


def test_image_manifest_attributes(registry, http, pushed) -> None:
    amd = pushed["amd"]
    body = http.get(f"/acr/v1/acr/app/_manifests/{amd.digest}").json()
    assert list(body) == ["registry", "imageName", "manifest"]
    manifest = body["manifest"]
    assert list(manifest) == [
        "digest",
        "imageSize",
        "createdTime",
        "lastUpdateTime",
        "architecture",
        "os",
        "mediaType",
        "configMediaType",
        "tags",
        "signed",  # a Dockyard extension: ACR's older spec had it on tags only
        "changeableAttributes",
    ]
    assert manifest["digest"] == amd.digest
    assert manifest["imageSize"] == image_size(amd)
    assert (manifest["architecture"], manifest["os"]) == ("amd64", "linux")
    assert manifest["mediaType"] == images.OCI_MANIFEST
    assert manifest["configMediaType"] == images.OCI_CONFIG
    assert manifest["tags"] == ["v1"]
    assert manifest["changeableAttributes"] == ALL_ENABLED
    assert TIME.match(manifest["createdTime"]) and TIME.match(manifest["lastUpdateTime"])
    docker = http.get(f"/acr/v1/acr/app/_manifests/{pushed['docker'].digest}").json()
    assert docker["manifest"]["mediaType"] == images.DOCKER_MANIFEST
    assert docker["manifest"]["configMediaType"] == images.DOCKER_CONFIG


def test_index_manifest_references_its_children(http, pushed) -> None:
    index = pushed["index"]
    manifest = http.get(f"/acr/v1/acr/app/_manifests/{index.digest}").json()["manifest"]
    assert "architecture" not in manifest and "os" not in manifest
    assert "configMediaType" not in manifest
    assert manifest["mediaType"] == images.OCI_INDEX
    assert manifest["tags"] == ["multi"]
    expected = [
        {"digest": child.digest, "architecture": child.platform["architecture"], "os": "linux"}
        for child in index.children
    ]
    assert manifest["references"] == sorted(expected, key=lambda ref: ref["digest"])
    assert manifest["imageSize"] == sum(image_size(child) for child in index.children)


def test_manifest_list_pages_and_orders(http, pushed) -> None:
    listed = follow(http, "/acr/v1/acr/app/_manifests?n=1", "manifests")
    digests = sorted(
        [
            pushed["amd"].digest,
            pushed["arm"].digest,
            pushed["docker"].digest,
            pushed["index"].digest,
        ]
    )
    assert [m["digest"] for m in listed] == digests
    first = http.get("/acr/v1/acr/app/_manifests", params={"n": 3})
    assert first.headers["Link"] == (
        f"</acr/v1/acr/app/_manifests?last={digests[2].replace(':', '%3A')}&n=3&orderby=>;"
        ' rel="next"'
    )
    body = http.get("/acr/v1/acr/app/_manifests").json()
    assert list(body) == ["registry", "imageName", "manifests"]
    newest = follow(http, "/acr/v1/acr/app/_manifests?n=2&orderby=timedesc", "manifests")
    assert newest[0]["digest"] == pushed["index"].digest  # pushed last
    times = [m["lastUpdateTime"] for m in newest]
    assert times == sorted(times, reverse=True)


def test_manifest_delete_by_digest(registry, http) -> None:
    image = images.busybox_image("arm64")
    registry.push_image("acr/mdel", image, "a")
    response = http.delete(f"/acr/v1/acr/mdel/_manifests/{image.digest.replace(':', '%3A')}")
    assert response.status_code == 202 and response.content == b""
    assert http.get(f"/acr/v1/acr/mdel/_manifests/{image.digest}").status_code == 404
    assert http.get("/acr/v1/acr/mdel/_tags/a").status_code == 404  # its tags go with it
    assert http.get("/acr/v1/acr/mdel").json()["manifestCount"] == 0


# -- PATCH and errors ------------------------------------------------------------------------


def test_patch_changes_only_the_keys_sent_and_returns_the_object(registry, http) -> None:
    image = images.busybox_image("amd64")
    registry.push_image("acr/patch", image, "v1")
    before = http.get("/acr/v1/acr/patch").json()
    after = patch(http, "/acr/v1/acr/patch?api-version=2021-07-01", writeEnabled=False)
    assert after["changeableAttributes"] == {
        **ALL_ENABLED,
        "writeEnabled": False,
        "teleportEnabled": False,
    }
    assert after["lastUpdateTime"] >= before["lastUpdateTime"]
    assert http.get("/acr/v1/acr/patch").json() == after
    tag = patch(http, "/acr/v1/acr/patch/_tags/v1", deleteEnabled=False, listEnabled=False)
    assert tag["tag"]["changeableAttributes"] == {
        **ALL_ENABLED,
        "deleteEnabled": False,
        "listEnabled": False,
    }
    manifest = patch(http, f"/acr/v1/acr/patch/_manifests/{image.digest}", readEnabled=False)
    assert manifest["manifest"]["changeableAttributes"] == {**ALL_ENABLED, "readEnabled": False}
    # What GET shows may be sent back; an empty body changes nothing.
    shown = after["changeableAttributes"]
    assert patch(http, "/acr/v1/acr/patch", **shown)["changeableAttributes"] == shown
    assert patch(http, "/acr/v1/acr/patch")["changeableAttributes"] == shown


@pytest.mark.parametrize(
    "content",
    [b"not json", b"[]", b'{"writeEnabled": "no"}', b'{"teleportEnabled": true}', b'{"x": 1}'],
)
def test_patch_refuses_other_bodies(registry, http, content: bytes) -> None:
    registry.push_blob("acr/badpatch", b"exists")
    response = http.patch(
        "/acr/v1/acr/badpatch", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert error_of(response)["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/acr/v1/acr/none", 404, "NAME_UNKNOWN"),
        ("PATCH", "/acr/v1/acr/none", 404, "NAME_UNKNOWN"),
        ("GET", "/acr/v1/acr/none/_tags", 404, "NAME_UNKNOWN"),
        ("GET", "/acr/v1/acr/none/_tags/v1", 404, "NAME_UNKNOWN"),
        ("GET", "/acr/v1/acr/none/_manifests", 404, "NAME_UNKNOWN"),
        ("GET", "/acr/v1/acr/app/_tags/nope", 404, "MANIFEST_UNKNOWN"),
        ("PATCH", "/acr/v1/acr/app/_tags/nope", 404, "MANIFEST_UNKNOWN"),
        ("GET", "/acr/v1/acr/app/_manifests/sha256:" + "0" * 64, 404, "MANIFEST_UNKNOWN"),
        ("DELETE", "/acr/v1/acr/app/_manifests/sha256:" + "0" * 64, 404, "MANIFEST_UNKNOWN"),
        ("GET", "/acr/v1/acr/app/_manifests/sha256:short", 400, "DIGEST_INVALID"),
        ("GET", "/acr/v1/acr/app/_manifests/v1", 400, "DIGEST_INVALID"),
        ("GET", "/acr/v1/acr/app/_tags/bad:tag", 400, "MANIFEST_INVALID"),
        ("GET", "/acr/v1/Bad/Name", 400, "NAME_INVALID"),
        ("GET", "/acr/v1/acr/app/_tags?n=x", 400, "PAGINATION_NUMBER_INVALID"),
        ("GET", "/acr/v1/acr/app/_tags?digest=sha256:x", 400, "DIGEST_INVALID"),
        ("POST", "/acr/v1/acr/app/_tags", 405, "UNSUPPORTED"),
    ],
)
def test_errors(http, pushed, method: str, path: str, status: int, code: str) -> None:
    response = http.request(method, path, json={} if method == "PATCH" else None)
    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


# -- locks -----------------------------------------------------------------------------------


class Scene:
    """A repository of its own per lock case: `v1` on image A, image B untagged."""

    def __init__(self, registry, http: httpx.Client, repo: str) -> None:
        self.registry, self.http, self.repo = registry, http, repo
        self.a, self.b = images.busybox_image("amd64"), images.busybox_image("arm64")
        registry.push_image(repo, self.a, "v1")
        registry.push_image(repo, self.b)

    def path(self, target: str) -> str:
        return {
            "repository": f"/acr/v1/{self.repo}",
            "tag": f"/acr/v1/{self.repo}/_tags/v1",
            "manifest": f"/acr/v1/{self.repo}/_manifests/{self.a.digest}",
        }[target]

    def tag_digest(self) -> str | None:
        response = self.http.get(f"/acr/v1/{self.repo}/_tags/v1")
        return response.json()["tag"]["digest"] if response.status_code == 200 else None


def _put(scene: Scene, reference: str, image: images.Image) -> httpx.Response:
    return scene.registry.put_manifest(scene.repo, reference, image.manifest, image.media_type)


OPERATIONS: dict[str, Callable[[Scene], httpx.Response]] = {
    "push new tag": lambda s: _put(s, "v2", s.b),
    "push blob": lambda s: s.http.post(f"/v2/{s.repo}/blobs/uploads/"),
    "move tag": lambda s: _put(s, "v1", s.b),
    "delete by tag": lambda s: s.http.delete(f"/v2/{s.repo}/manifests/v1"),
    "delete by digest": lambda s: s.http.delete(f"/v2/{s.repo}/manifests/{s.a.digest}"),
    "acr delete tag": lambda s: s.http.delete(f"/acr/v1/{s.repo}/_tags/v1"),
    "acr delete manifest": lambda s: s.http.delete(f"/acr/v1/{s.repo}/_manifests/{s.a.digest}"),
    "delete repository": lambda s: s.http.delete(f"/acr/v1/{s.repo}"),
    "pull by tag": lambda s: s.http.get(f"/v2/{s.repo}/manifests/v1"),
    "head by tag": lambda s: s.http.head(f"/v2/{s.repo}/manifests/v1"),
    "pull by digest": lambda s: s.http.get(f"/v2/{s.repo}/manifests/{s.a.digest}"),
    "pull blob": lambda s: s.http.get(f"/v2/{s.repo}/blobs/{images.sha256_digest(s.a.config)}"),
    "read metadata": lambda s: s.http.get(f"/acr/v1/{s.repo}/_tags/v1"),
}

# (lock target, attribute) -> the operations it refuses; every other one is allowed.
REFUSED = {
    ("repository", "writeEnabled"): {
        "push new tag",
        "push blob",
        "move tag",
        "delete by tag",
        "delete by digest",
        "acr delete tag",
        "acr delete manifest",
        "delete repository",
    },
    ("tag", "writeEnabled"): {
        "move tag",
        "delete by tag",
        "acr delete tag",
        "delete by digest",  # its tag would go with it
        "acr delete manifest",
        "delete repository",
    },
    ("manifest", "writeEnabled"): {"delete by digest", "acr delete manifest", "delete repository"},
    ("repository", "deleteEnabled"): {"delete repository"},
    ("tag", "deleteEnabled"): {
        "delete by tag",
        "acr delete tag",
        "delete by digest",
        "acr delete manifest",
        "delete repository",
    },
    ("manifest", "deleteEnabled"): {"delete by digest", "acr delete manifest", "delete repository"},
    ("repository", "readEnabled"): {"pull by tag", "head by tag", "pull by digest", "pull blob"},
    ("tag", "readEnabled"): {"pull by tag", "head by tag"},
    ("manifest", "readEnabled"): {"pull by tag", "head by tag", "pull by digest"},
    ("repository", "listEnabled"): set(),
    ("tag", "listEnabled"): set(),
    ("manifest", "listEnabled"): set(),
}
CASES = [
    (target, attribute, operation) for (target, attribute) in REFUSED for operation in OPERATIONS
]


@pytest.mark.parametrize(("target", "attribute", "operation"), CASES)
def test_lock_table(registry, http, target: str, attribute: str, operation: str) -> None:
    case = re.sub(r"[^a-z0-9]+", "-", f"{target}-{attribute}-{operation}".lower())
    scene = Scene(registry, http, f"locks/{case}")
    patch(http, scene.path(target), **{attribute: False})
    response = OPERATIONS[operation](scene)
    if operation not in REFUSED[(target, attribute)]:
        assert response.status_code < 300, (response.status_code, response.text)
        return
    assert response.status_code == 403, (response.status_code, response.text)
    if response.request.method == "HEAD":
        assert response.content == b""
    else:
        error = error_of(response)
        assert error["code"] == "DENIED"
        assert error["detail"]["lock"] == attribute
        # The message names the lock and the request that lifts it.
        lift = f'PATCH {scene.path(target)} with {{"{attribute}": true}}'
        assert f"has {attribute}=false; to lift the lock, {lift}" in error["message"]
    assert scene.tag_digest() == scene.a.digest  # nothing moved or went
    patch(http, scene.path(target), **{attribute: True})
    again = OPERATIONS[operation](scene)
    assert again.status_code < 300, (again.status_code, again.text)


def test_list_locks_hide_items_from_listings(registry, http) -> None:
    scene = Scene(registry, http, "locks/listing")
    registry.put_manifest(scene.repo, "v2", scene.b.manifest, scene.b.media_type)

    def tags() -> tuple[list[str], list[str]]:
        v2 = http.get(f"/v2/{scene.repo}/tags/list").json()["tags"]
        acr = [t["name"] for t in http.get(f"/acr/v1/{scene.repo}/_tags").json()["tags"]]
        return v2, acr

    def catalogs() -> tuple[bool, bool]:
        v2 = follow(http, "/v2/_catalog", "repositories")
        acr = follow(http, "/acr/v1/_catalog", "repositories")
        return scene.repo in v2, scene.repo in acr

    patch(http, scene.path("tag"), listEnabled=False)
    assert tags() == (["v2"], ["v2"])
    assert http.get(f"/v2/{scene.repo}/manifests/v1").status_code == 200  # hidden, not locked
    patch(http, scene.path("manifest"), listEnabled=False)
    listed = [m["digest"] for m in http.get(f"/acr/v1/{scene.repo}/_manifests").json()["manifests"]]
    assert listed == [scene.b.digest]
    assert http.get(scene.path("manifest")).status_code == 200
    assert catalogs() == (True, True)
    patch(http, scene.path("repository"), listEnabled=False)
    assert catalogs() == (False, False)
    assert http.get(f"/v2/{scene.repo}/tags/list").status_code == 200
    patch(http, scene.path("repository"), listEnabled=True)
    patch(http, scene.path("tag"), listEnabled=True)
    assert catalogs() == (True, True)
    assert tags() == (["v1", "v2"], ["v1", "v2"])


def test_locks_are_independent(registry, http) -> None:
    """Unlocking a repository does not unlock a manifest locked on its own."""
    scene = Scene(registry, http, "locks/independent")
    patch(http, scene.path("manifest"), writeEnabled=False)
    patch(http, scene.path("repository"), writeEnabled=False)
    patch(http, scene.path("repository"), writeEnabled=True)
    response = http.delete(f"/v2/{scene.repo}/manifests/{scene.a.digest}")
    assert response.status_code == 403
    assert error_of(response)["detail"] == {
        "lock": "writeEnabled",
        "repository": scene.repo,
        "digest": scene.a.digest,
    }
