"""Raw HTTP against a real server: every endpoint of the distribution API, and every
error code a client can provoke, in the spec's JSON shape with the spec's status."""

from __future__ import annotations

import hashlib
import json
import os
import time

import images
import pytest

MiB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return images.sha256_digest(data)


def error_code(response) -> str:
    body = response.json()
    assert set(body) == {"errors"}, body
    entry = body["errors"][0]
    assert {"code", "message"} <= set(entry), entry
    return entry["code"]


def oci_manifest(config: bytes, layers: list[bytes], **extra) -> bytes:
    return images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "config": images.descriptor(images.OCI_CONFIG, config),
            "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer) for layer in layers],
            **extra,
        }
    )


def push_simple(registry, repo: str, tag: str, seed: bytes = b"") -> tuple[bytes, list[bytes]]:
    config = b'{"architecture":"amd64","os":"linux","seed":"' + seed.hex().encode() + b'"}'
    layers = [os.urandom(512) + seed, os.urandom(700)]
    for blob in (config, *layers):
        registry.push_blob(repo, blob)
    manifest = oci_manifest(config, layers)
    response = registry.put_manifest(repo, tag, manifest, images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return manifest, layers


# -- base ----------------------------------------------------------------------------------


def test_base_endpoint_announces_api_version(http):
    response = http.get("/v2/")
    assert response.status_code == 200
    assert response.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_unknown_path_and_method_use_error_shape(http):
    assert error_code(http.get("/v2/nothing/here")) == "NOT_FOUND"
    response = http.post("/v2/api/x/manifests/latest")
    assert response.status_code == 405
    assert error_code(response) == "UNSUPPORTED"


# -- uploads ---------------------------------------------------------------------------------


def test_monolithic_post_with_digest(http):
    data = os.urandom(3000)
    response = http.post(f"/v2/api/mono/blobs/uploads/?digest={digest_of(data)}", content=data)
    assert response.status_code == 201
    assert response.headers["Location"] == f"/v2/api/mono/blobs/{digest_of(data)}"
    assert response.headers["Docker-Content-Digest"] == digest_of(data)
    assert http.get(response.headers["Location"]).content == data


def test_monolithic_post_with_wrong_digest_stores_nothing(http):
    data = os.urandom(100)
    wrong = digest_of(b"other")
    response = http.post(f"/v2/api/mono-bad/blobs/uploads/?digest={wrong}", content=data)
    assert response.status_code == 400
    assert error_code(response) == "DIGEST_INVALID"
    assert http.head(f"/v2/api/mono-bad/blobs/{wrong}").status_code == 404
    assert http.head(f"/v2/api/mono-bad/blobs/{digest_of(data)}").status_code == 404


def test_chunked_upload_with_content_range_and_status(http):
    data = os.urandom(3 * 1000 + 17)
    start = http.post("/v2/api/chunked/blobs/uploads/")
    assert start.status_code == 202
    location = start.headers["Location"]
    assert start.headers["Docker-Upload-UUID"] in location
    assert start.headers["Range"] == "0-0"
    offset = 0
    for chunk in (data[:1000], data[1000:2000], data[2000:]):
        end = offset + len(chunk) - 1
        response = http.patch(
            location,
            content=chunk,
            headers={
                "Content-Range": f"{offset}-{end}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert response.status_code == 202, response.text
        assert response.headers["Range"] == f"0-{end}"
        location = response.headers["Location"]
        offset = end + 1
    status = http.get(location)
    assert status.status_code == 204
    assert status.headers["Range"] == f"0-{len(data) - 1}"
    done = http.put(f"{location}?digest={digest_of(data)}")
    assert done.status_code == 201
    assert http.get(f"/v2/api/chunked/blobs/{digest_of(data)}").content == data


def test_out_of_order_chunk_is_416_and_upload_survives(http):
    data = os.urandom(2000)
    location = http.post("/v2/api/order/blobs/uploads/").headers["Location"]
    http.patch(location, content=data[:1000], headers={"Content-Range": "0-999"})
    skipped = http.patch(location, content=data[1500:], headers={"Content-Range": "1500-1999"})
    assert skipped.status_code == 416
    assert error_code(skipped) == "BLOB_UPLOAD_INVALID"
    assert skipped.headers["Range"] == "0-999"
    again = http.patch(location, content=data[1000:], headers={"Content-Range": "1000-1999"})
    assert again.status_code == 202
    assert http.put(f"{location}?digest={digest_of(data)}").status_code == 201


def test_streamed_patch_without_content_range_and_final_chunk_in_put(http):
    data = os.urandom(5 * 1000)

    def stream():
        for i in range(0, 4000, 500):
            yield data[i : i + 500]

    location = http.post("/v2/api/stream/blobs/uploads/").headers["Location"]
    response = http.patch(location, content=stream())
    assert response.status_code == 202
    assert response.headers["Range"] == "0-3999"
    done = http.put(
        response.headers["Location"] + f"?digest={digest_of(data)}", content=data[4000:]
    )
    assert done.status_code == 201
    assert http.get(f"/v2/api/stream/blobs/{digest_of(data)}").content == data


def test_finish_with_wrong_digest_and_missing_digest(http):
    location = http.post("/v2/api/wrong/blobs/uploads/").headers["Location"]
    http.patch(location, content=b"hello")
    missing = http.put(location)
    assert missing.status_code == 400
    assert error_code(missing) == "BLOB_UPLOAD_INVALID"
    wrong = http.put(f"{location}?digest={digest_of(b'bye')}")
    assert wrong.status_code == 400
    assert error_code(wrong) == "DIGEST_INVALID"
    invalid = http.put(f"{location}?digest=sha256:xyz")
    assert error_code(invalid) == "DIGEST_INVALID"


def test_sha512_blob(http):
    data = os.urandom(999)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = http.post("/v2/api/sha512/blobs/uploads/").headers["Location"]
    assert http.put(f"{location}?digest={digest}", content=data).status_code == 201
    response = http.get(f"/v2/api/sha512/blobs/{digest}")
    assert response.content == data
    assert response.headers["Docker-Content-Digest"] == digest


def test_cancel_upload(http):
    location = http.post("/v2/api/cancel/blobs/uploads/").headers["Location"]
    assert http.delete(location).status_code == 204
    gone = http.get(location)
    assert gone.status_code == 404
    assert error_code(gone) == "BLOB_UPLOAD_UNKNOWN"
    assert http.patch(location, content=b"x").status_code == 404


def test_upload_is_bound_to_its_repository(http):
    location = http.post("/v2/api/owner/blobs/uploads/").headers["Location"]
    stolen = location.replace("/api/owner/", "/api/thief/")
    assert error_code(http.get(stolen)) == "BLOB_UPLOAD_UNKNOWN"


def test_invalid_repository_name(http):
    response = http.post("/v2/API/Upper/blobs/uploads/")
    assert response.status_code == 400
    assert error_code(response) == "NAME_INVALID"


def test_mount_from_repository_and_fallback(registry, http):
    data = os.urandom(800)
    digest = registry.push_blob("api/mount-src", data)
    mounted = http.post(f"/v2/api/mount-dst/blobs/uploads/?mount={digest}&from=api/mount-src")
    assert mounted.status_code == 201
    assert mounted.headers["Location"] == f"/v2/api/mount-dst/blobs/{digest}"
    assert http.get(f"/v2/api/mount-dst/blobs/{digest}").content == data
    # The source does not have it: an ordinary upload session starts instead.
    other = digest_of(b"not there")
    fallback = http.post(f"/v2/api/mount-dst/blobs/uploads/?mount={other}&from=api/mount-src")
    assert fallback.status_code == 202
    assert "/blobs/uploads/" in fallback.headers["Location"]


# -- blobs -----------------------------------------------------------------------------------


def test_blob_get_head_and_ranges(registry, http):
    data = os.urandom(10_000)
    digest = registry.push_blob("api/ranges", data)
    head = http.head(f"/v2/api/ranges/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "10000"
    assert head.headers["Docker-Content-Digest"] == digest
    whole = http.get(f"/v2/api/ranges/blobs/{digest}")
    assert whole.content == data
    part = http.get(f"/v2/api/ranges/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == data[100:200]
    assert part.headers["Content-Range"] == "bytes 100-199/10000"
    tail = http.get(f"/v2/api/ranges/blobs/{digest}", headers={"Range": "bytes=9000-"})
    assert tail.content == data[9000:]
    suffix = http.get(f"/v2/api/ranges/blobs/{digest}", headers={"Range": "bytes=-10"})
    assert suffix.content == data[-10:]
    beyond = http.get(f"/v2/api/ranges/blobs/{digest}", headers={"Range": "bytes=20000-"})
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == "bytes */10000"
    everything = http.get(f"/v2/api/ranges/blobs/{digest}", headers={"Range": "bytes=0-"})
    assert everything.status_code == 206
    assert everything.content == data
    assert everything.headers["Content-Range"] == "bytes 0-9999/10000"


def test_empty_blob(registry, http):
    digest = registry.push_blob("api/empty", b"")
    got = http.get(f"/v2/api/empty/blobs/{digest}")
    assert got.status_code == 200
    assert got.content == b""
    assert got.headers["Content-Length"] == "0"


def test_blob_unknown_and_invalid_digest(http):
    missing = http.get(f"/v2/api/none/blobs/{digest_of(b'missing')}")
    assert missing.status_code == 404
    assert error_code(missing) == "BLOB_UNKNOWN"
    assert http.head(f"/v2/api/none/blobs/{digest_of(b'missing')}").status_code == 404
    bad = http.get("/v2/api/none/blobs/sha256:abc")
    assert bad.status_code == 400
    assert error_code(bad) == "DIGEST_INVALID"


def test_blob_delete_unlinks_from_repository_only(registry, http):
    data = os.urandom(300)
    digest = registry.push_blob("api/del-a", data)
    registry.push_blob("api/del-b", data)
    assert http.delete(f"/v2/api/del-a/blobs/{digest}").status_code == 202
    assert http.get(f"/v2/api/del-a/blobs/{digest}").status_code == 404
    assert http.get(f"/v2/api/del-b/blobs/{digest}").content == data
    assert error_code(http.delete(f"/v2/api/del-a/blobs/{digest}")) == "BLOB_UNKNOWN"


def test_large_blob_round_trip(registry, http):
    data = os.urandom(12 * MiB)
    digest = registry.push_blob("api/large", data)
    response = http.get(f"/v2/api/large/blobs/{digest}")
    assert hashlib.sha256(response.content).hexdigest() == digest.split(":")[1]
    ranged = http.get(
        f"/v2/api/large/blobs/{digest}", headers={"Range": f"bytes={MiB}-{9 * MiB - 1}"}
    )
    assert ranged.content == data[MiB : 9 * MiB]


# -- manifests -------------------------------------------------------------------------------


def test_manifest_put_get_head_by_tag_and_digest(registry, http):
    manifest, _ = push_simple(registry, "api/manifest", "v1")
    digest = digest_of(manifest)
    for reference in ("v1", digest):
        got = http.get(f"/v2/api/manifest/manifests/{reference}")
        assert got.status_code == 200
        assert got.content == manifest
        assert got.headers["Content-Type"] == images.OCI_MANIFEST
        assert got.headers["Docker-Content-Digest"] == digest
        head = http.head(f"/v2/api/manifest/manifests/{reference}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(manifest))
        assert head.headers["Docker-Content-Digest"] == digest


def test_manifest_put_by_digest_must_match(registry, http):
    config = b'{"os":"linux"}'
    registry.push_blob("api/bydigest", config)
    manifest = oci_manifest(config, [])
    ok = registry.put_manifest("api/bydigest", digest_of(manifest), manifest, images.OCI_MANIFEST)
    assert ok.status_code == 201
    assert ok.headers["Location"] == f"/v2/api/bydigest/manifests/{digest_of(manifest)}"
    wrong = registry.put_manifest("api/bydigest", digest_of(b"x"), manifest, images.OCI_MANIFEST)
    assert wrong.status_code == 400
    assert error_code(wrong) == "DIGEST_INVALID"


def test_manifest_referencing_missing_blob_is_refused(registry, http):
    config = b'{"os":"linux"}'
    registry.push_blob("api/missing-blob", config)
    manifest = oci_manifest(config, [b"never pushed"])
    response = registry.put_manifest("api/missing-blob", "v1", manifest, images.OCI_MANIFEST)
    assert response.status_code == 400
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"
    assert http.get("/v2/api/missing-blob/manifests/v1").status_code == 404


def test_manifest_blob_in_other_repository_is_not_enough(registry):
    config = b'{"os":"linux","other":1}'
    registry.push_blob("api/elsewhere", config)
    manifest = oci_manifest(config, [])
    response = registry.put_manifest("api/not-here", "v1", manifest, images.OCI_MANIFEST)
    assert error_code(response) == "MANIFEST_BLOB_UNKNOWN"


def test_invalid_manifests(registry, http):
    put = registry.put_manifest
    assert error_code(put("api/invalid", "v1", b"{not json", images.OCI_MANIFEST)) == (
        "MANIFEST_INVALID"
    )
    no_layers = images.json_bytes({"schemaVersion": 2, "mediaType": images.OCI_MANIFEST})
    assert error_code(put("api/invalid", "v1", no_layers, images.OCI_MANIFEST)) == (
        "MANIFEST_INVALID"
    )
    unknown_type = put("api/invalid", "v1", b'{"schemaVersion":2}', "application/x-unknown")
    assert error_code(unknown_type) == "MANIFEST_INVALID"
    bad_tag = put("api/invalid", "-bad-tag", no_layers, images.OCI_MANIFEST)
    assert bad_tag.status_code == 400
    too_large = put("api/invalid", "big", b" " * (4 * MiB + 1), images.OCI_MANIFEST)
    assert too_large.status_code == 413
    assert error_code(too_large) == "MANIFEST_INVALID"


def test_index_requires_its_children(registry, http):
    manifest, _ = push_simple(registry, "api/index", "child")
    child = {
        "mediaType": images.OCI_MANIFEST,
        "digest": digest_of(manifest),
        "size": len(manifest),
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    missing = {
        "mediaType": images.OCI_MANIFEST,
        "digest": digest_of(b"absent"),
        "size": 6,
        "platform": {"architecture": "arm64", "os": "linux"},
    }
    bad = images.json_bytes(
        {"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": [child, missing]}
    )
    refused = registry.put_manifest("api/index", "multi", bad, images.OCI_INDEX)
    assert error_code(refused) == "MANIFEST_BLOB_UNKNOWN"
    good = images.json_bytes(
        {"schemaVersion": 2, "mediaType": images.OCI_INDEX, "manifests": [child]}
    )
    assert registry.put_manifest("api/index", "multi", good, images.OCI_INDEX).status_code == 201
    got = http.get("/v2/api/index/manifests/multi")
    assert got.content == good
    assert got.headers["Content-Type"] == images.OCI_INDEX


def test_manifest_delete_by_tag_and_by_digest(registry, http):
    manifest, _ = push_simple(registry, "api/delete", "a")
    digest = digest_of(manifest)
    assert (
        registry.put_manifest("api/delete", "b", manifest, images.OCI_MANIFEST).status_code == 201
    )
    assert http.delete("/v2/api/delete/manifests/a").status_code == 202
    assert error_code(http.get("/v2/api/delete/manifests/a")) == "MANIFEST_UNKNOWN"
    assert http.get("/v2/api/delete/manifests/b").status_code == 200
    assert http.delete(f"/v2/api/delete/manifests/{digest}").status_code == 202
    assert http.get("/v2/api/delete/manifests/b").status_code == 404
    assert http.get(f"/v2/api/delete/manifests/{digest}").status_code == 404
    assert error_code(http.delete(f"/v2/api/delete/manifests/{digest}")) == "MANIFEST_UNKNOWN"


def test_tag_moves_to_new_manifest(registry, http):
    first, _ = push_simple(registry, "api/move", "latest", b"1")
    second, _ = push_simple(registry, "api/move", "latest", b"2")
    assert http.get("/v2/api/move/manifests/latest").content == second
    assert http.get(f"/v2/api/move/manifests/{digest_of(first)}").content == first


def test_manifest_unknown(http):
    response = http.get("/v2/api/nope/manifests/latest")
    assert response.status_code == 404
    assert error_code(response) == "MANIFEST_UNKNOWN"
    assert http.head("/v2/api/nope/manifests/latest").status_code == 404


# -- referrers -------------------------------------------------------------------------------


def test_subject_and_referrers_with_filter(registry, http):
    subject, _ = push_simple(registry, "api/referrers", "app")
    subject_desc = {
        "mediaType": images.OCI_MANIFEST,
        "digest": digest_of(subject),
        "size": len(subject),
    }
    registry.push_blob("api/referrers", images.EMPTY_JSON)
    pushed = {}
    for kind, payload in (
        ("application/vnd.example.sig", b"sig"),
        ("application/vnd.example.sbom", b"sbom"),
    ):
        registry.push_blob("api/referrers", payload)
        body = images.json_bytes(
            {
                "schemaVersion": 2,
                "mediaType": images.OCI_MANIFEST,
                "artifactType": kind,
                "config": images.descriptor(images.OCI_EMPTY, images.EMPTY_JSON),
                "layers": [images.descriptor("application/octet-stream", payload)],
                "subject": subject_desc,
                "annotations": {"org.example.kind": kind},
            }
        )
        response = registry.put_manifest(
            "api/referrers", digest_of(body), body, images.OCI_MANIFEST
        )
        assert response.status_code == 201
        assert response.headers["OCI-Subject"] == digest_of(subject)
        pushed[kind] = body

    listed = http.get(f"/v2/api/referrers/referrers/{digest_of(subject)}")
    assert listed.status_code == 200
    assert listed.headers["Content-Type"] == images.OCI_INDEX
    index = listed.json()
    assert index["schemaVersion"] == 2 and index["mediaType"] == images.OCI_INDEX
    by_type = {m["artifactType"]: m for m in index["manifests"]}
    assert set(by_type) == set(pushed)
    for kind, body in pushed.items():
        assert by_type[kind]["digest"] == digest_of(body)
        assert by_type[kind]["size"] == len(body)
        assert by_type[kind]["annotations"] == {"org.example.kind": kind}

    filtered = http.get(
        f"/v2/api/referrers/referrers/{digest_of(subject)}",
        params={"artifactType": "application/vnd.example.sbom"},
    )
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [
        digest_of(pushed["application/vnd.example.sbom"])
    ]
    none = http.get(f"/v2/api/referrers/referrers/{digest_of(b'nothing refers')}")
    assert none.json()["manifests"] == []
    assert error_code(http.get("/v2/api/referrers/referrers/sha256:zz")) == "DIGEST_INVALID"


# -- listings --------------------------------------------------------------------------------


def test_tags_list_paginates_with_link(registry, http):
    manifest, _ = push_simple(registry, "api/tags", "t00")
    names = [f"t{i:02d}" for i in range(25)]
    for name in names[1:]:
        registry.put_manifest("api/tags", name, manifest, images.OCI_MANIFEST)
    full = http.get("/v2/api/tags/tags/list")
    assert full.json() == {"name": "api/tags", "tags": names}
    assert "Link" not in full.headers
    seen, url = [], "/v2/api/tags/tags/list?n=10"
    while url:
        page = http.get(url)
        assert page.status_code == 200
        seen += page.json()["tags"]
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == names
    after = http.get("/v2/api/tags/tags/list", params={"last": "t20", "n": 100})
    assert after.json()["tags"] == names[21:]


def test_tags_list_errors(http):
    assert error_code(http.get("/v2/api/never/tags/list")) == "NAME_UNKNOWN"
    bad_n = http.get("/v2/api/never/tags/list?n=-1")
    assert bad_n.status_code == 400
    assert error_code(bad_n) == "PAGINATION_NUMBER_INVALID"


def test_catalog_paginates(registry, http):
    for i in range(5):
        registry.push_blob(f"api/cat/r{i}", f"blob {i}".encode())
    everything = http.get("/v2/_catalog").json()["repositories"]
    assert everything == sorted(everything)
    assert {f"api/cat/r{i}" for i in range(5)} <= set(everything)
    seen, url = [], "/v2/_catalog?n=2"
    while url:
        page = http.get(url)
        seen += page.json()["repositories"]
        link = page.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    assert seen == everything


def test_request_log_is_one_json_line_per_request(registry, http):
    http.get("/v2/api/logged/tags/list")
    # The line is written once the response has gone: on a busy machine, a moment later.
    deadline = time.monotonic() + 5
    while True:
        entries = [e for e in registry.request_log() if e.get("path") == "/v2/api/logged/tags/list"]
        if entries or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(entries) == 1
    assert entries[0]["status"] == 404 and entries[0]["method"] == "GET"
    assert json.dumps(entries[0])  # structured, not free text


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints(http, path):
    response = http.get(path)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
