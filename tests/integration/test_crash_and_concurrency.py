"""Crash safety and concurrency against a real server process.

A SIGKILL at any moment keeps everything the server acknowledged and shows nothing half
written; concurrent clients get no error they did not deserve and corrupt nothing."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import images
import pytest

MiB = 1024 * 1024


def digest_of(data: bytes) -> str:
    return images.sha256_digest(data)


def small_image(registry, repo: str, tag: str, seed: int) -> tuple[bytes, list[bytes]]:
    """Push config + one layer + manifest; returns the manifest bytes and blobs."""
    config = b'{"os":"linux","seed":%d}' % seed
    layer = hashlib.sha256(b"layer %d" % seed).digest() * 64
    for blob in (config, layer):
        registry.push_blob(repo, blob)
    manifest = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "config": images.descriptor(images.OCI_CONFIG, config),
            "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer)],
        }
    )
    response = registry.put_manifest(repo, tag, manifest, images.OCI_MANIFEST)
    assert response.status_code == 201, response.text
    return manifest, [config, layer]


def assert_image_intact(http: httpx.Client, repo: str, tag: str, manifest: bytes, blobs) -> None:
    got = http.get(f"/v2/{repo}/manifests/{tag}")
    assert got.status_code == 200, (repo, tag, got.text)
    assert got.content == manifest
    for blob in blobs:
        response = http.get(f"/v2/{repo}/blobs/{digest_of(blob)}")
        assert response.status_code == 200
        assert response.content == blob


@pytest.mark.slow
def test_sigkill_mid_push_loses_nothing_acknowledged(fresh_registry):
    registry = fresh_registry
    acknowledged: dict[str, tuple[bytes, list[bytes]]] = {}
    for i in range(5):
        acknowledged[f"v{i}"] = small_image(registry, "crash/app", f"v{i}", i)

    # A large chunked upload that will be cut off by the crash, and a stream of small
    # pushes whose acknowledgements the client records until the server dies.
    big = os.urandom(48 * MiB)
    client = registry.client()
    location = client.post("/v2/crash/big/blobs/uploads/").headers["Location"]
    sent = 0
    for offset in range(0, 16 * MiB, 4 * MiB):
        chunk = big[offset : offset + 4 * MiB]
        response = client.patch(
            location,
            content=chunk,
            headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"},
        )
        assert response.status_code == 202
        sent = offset + len(chunk)

    stop = threading.Event()
    pushed_during: dict[str, tuple[bytes, list[bytes]]] = {}

    def keep_pushing() -> None:
        seed = 100
        while not stop.is_set():
            try:
                result = small_image(registry, "crash/during", f"t{seed}", seed)
            except (httpx.HTTPError, AssertionError):
                return
            pushed_during[f"t{seed}"] = result
            seed += 1

    def stream_rest() -> None:
        def body():
            # Never the last MiB: the request stays open until the crash, however slow
            # the machine is.
            for offset in range(sent, len(big) - MiB, MiB):
                if stop.is_set():
                    return
                yield big[offset : offset + MiB]
                time.sleep(0.05)
            stop.wait(60)

        with contextlib.suppress(httpx.HTTPError):
            client.put(f"{location}?digest={digest_of(big)}", content=body())

    pusher = threading.Thread(target=keep_pushing)
    streamer = threading.Thread(target=stream_rest)
    pusher.start()
    streamer.start()
    deadline = time.monotonic() + 30
    while not pushed_during and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # a few more pushes in flight when the server dies
    registry.kill()
    stop.set()
    pusher.join(10)
    streamer.join(10)
    client.close()
    assert pushed_during, "the pusher never got an acknowledgement before the crash"

    registry.start()
    with registry.client() as http:
        for tag, (manifest, blobs) in acknowledged.items():
            assert_image_intact(http, "crash/app", tag, manifest, blobs)
        for tag, (manifest, blobs) in pushed_during.items():
            assert_image_intact(http, "crash/during", tag, manifest, blobs)
        # The interrupted blob is not visible, and its session can still be finished
        # from what the server acknowledged (the part after it is re-sent).
        assert http.head(f"/v2/crash/big/blobs/{digest_of(big)}").status_code == 404
        status = http.get(location)
        assert status.status_code == 204
        done_to = int(status.headers["Range"].split("-")[1]) + 1
        assert done_to == sent
        finished = http.put(f"{location}?digest={digest_of(big)}", content=big[done_to:])
        assert finished.status_code == 201, finished.text
        pulled = http.get(f"/v2/crash/big/blobs/{digest_of(big)}")
        assert hashlib.sha256(pulled.content).hexdigest() == digest_of(big).split(":")[1]
        # Every tag the server lists resolves to a manifest whose blobs are all there.
        tags = http.get("/v2/crash/during/tags/list").json()["tags"]
        for tag in tags:
            assert http.get(f"/v2/crash/during/manifests/{tag}").status_code == 200


def test_same_blob_pushed_by_eight_clients_at_once(registry):
    data = os.urandom(6 * MiB)
    digest = digest_of(data)

    def push(i: int) -> int:
        with registry.client() as http:
            location = http.post(f"/v2/concurrent/same{i % 2}/blobs/uploads/").headers["Location"]
            half = len(data) // 2
            http.patch(location, content=data[:half])
            return http.put(f"{location}?digest={digest}", content=data[half:]).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(push, range(8)))
    assert codes == [201] * 8
    with registry.client() as http:
        for repo in ("concurrent/same0", "concurrent/same1"):
            assert http.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_two_clients_moving_one_tag(registry):
    one, _one_blobs = small_image(registry, "concurrent/tag", "one", 1)
    two, _two_blobs = small_image(registry, "concurrent/tag", "two", 2)
    codes: list[int] = []

    def move(manifest: bytes) -> None:
        with registry.client() as http:
            for _ in range(40):
                response = http.put(
                    "/v2/concurrent/tag/manifests/latest",
                    content=manifest,
                    headers={"Content-Type": images.OCI_MANIFEST},
                )
                codes.append(response.status_code)

    threads = [threading.Thread(target=move, args=(m,)) for m in (one, two)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert set(codes) == {201} and len(codes) == 80
    with registry.client() as http:
        latest = http.get("/v2/concurrent/tag/manifests/latest").content
        assert latest in (one, two)
        tags = http.get("/v2/concurrent/tag/tags/list").json()["tags"]
        assert tags == ["latest", "one", "two"]


@pytest.mark.slow
def test_pushes_during_deletes(registry):
    errors: list[str] = []
    stop = threading.Event()

    def pusher() -> None:
        seed = 1000
        while not stop.is_set():
            try:
                small_image(registry, "concurrent/churn", f"p{seed}", seed)
            except AssertionError as exc:
                errors.append(str(exc))
            seed += 1

    def deleter() -> None:
        with registry.client() as http:
            while not stop.is_set():
                listed = http.get("/v2/concurrent/churn/tags/list")
                if listed.status_code != 200:
                    continue
                for tag in listed.json()["tags"][:-1]:
                    manifest = http.get(f"/v2/concurrent/churn/manifests/{tag}")
                    if manifest.status_code != 200:
                        continue
                    digest = manifest.headers["Docker-Content-Digest"]
                    response = http.delete(f"/v2/concurrent/churn/manifests/{digest}")
                    if response.status_code not in (202, 404):
                        errors.append(f"delete {digest}: {response.status_code} {response.text}")

    threads = [
        threading.Thread(target=pusher),
        threading.Thread(target=pusher),
        threading.Thread(target=deleter),
    ]
    for thread in threads:
        thread.start()
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    with registry.client() as http:
        for tag in http.get("/v2/concurrent/churn/tags/list").json()["tags"]:
            manifest = http.get(f"/v2/concurrent/churn/manifests/{tag}")
            assert manifest.status_code == 200
            for layer in httpx.Response(200, content=manifest.content).json()["layers"]:
                assert http.head(f"/v2/concurrent/churn/blobs/{layer['digest']}").status_code == 200
