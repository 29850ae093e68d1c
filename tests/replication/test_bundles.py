"""A change sent as one request: an image's small blobs, its manifest and its tag's write
go to a peer in one bundle, applied there in order, each verified as its own request
would be; a bundle that is not one is refused. Sender and peer in process: the peer is
the app; the sender reads from a second registry of the same services (its manifests
and blobs), sent under the peer's registry name."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime

import images
import orjson
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient
from test_apply import BASE, PEER, services

from dockyard.app import create_app
from dockyard.common.errors import RequestInvalid
from dockyard.core.events import TagMoved, Untagged
from dockyard.core.registries import RegistryRecord
from dockyard.metadata.schema import events
from dockyard.replication.bundles import (
    MEDIA_TYPE,
    BlobChange,
    Bundle,
    ManifestChange,
    read_bundle,
)
from dockyard.replication.sender import _Delivery, _Sessions, _TagWrite
from dockyard.replication.stamps import Stamp
from dockyard.services import Services
from dockyard.storage.stores import BlobStores

__all__ = ["services"]  # the fixture, shared with test_apply

OTHER_HOST = "other.registry.example"
EARLY, LATE = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)


def _image(*sizes: int) -> images.Image:
    config = images.json_bytes({"architecture": "amd64", "os": "linux", "n": os.urandom(4).hex()})
    layers = tuple(os.urandom(size) for size in sizes or (1024,))
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": images.descriptor(images.OCI_CONFIG, config),
        "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer) for layer in layers],
    }
    return images.Image(
        images.json_bytes(manifest), images.OCI_MANIFEST, config, layers, {"os": "linux"}
    )


def _push_to_other(http: TestClient, image: images.Image) -> None:
    """The image into the other registry (the sending side's content)."""
    for digest, data in image.blobs.items():
        pushed = http.post(
            f"http://{OTHER_HOST}/v2/app/blobs/uploads/", params={"digest": digest}, content=data
        )
        assert pushed.status_code == 201, pushed.text
    put = http.put(
        f"http://{OTHER_HOST}/v2/app/manifests/{image.digest}",
        content=image.manifest,
        headers={"Content-Type": image.media_type},
    )
    assert put.status_code == 201, put.text


def _sender(
    services: Services, other: RegistryRecord, http: TestClient, *lanes: TestClient
) -> _Delivery:
    """A delivery of the other registry's content, as the peer's registry `dockyard`,
    through `http` (and `lanes`), each pointed at the peer endpoints as the peer."""
    for client in (http, *lanes):
        client.headers.update(PEER)
        client.base_url = client.base_url.copy_with(path=BASE.rsplit("/registries", 1)[0])
    return _Delivery(
        http,  # type: ignore[arg-type]
        services.meta,
        _StoresOf(services.stores, "other"),  # type: ignore[arg-type]
        RegistryRecord(other.id, "dockyard", other.login_server),
        _Sessions({}, "westus", "dockyard"),
        lanes,  # type: ignore[arg-type]
    )


class _StoresOf:
    """The sending side's stores: the other registry's, whatever name is asked."""

    def __init__(self, stores: BlobStores, name: str) -> None:
        self._store = stores.for_registry(name)

    def for_registry(self, name: str) -> object:
        return self._store


def test_a_bundle_reads_back_what_was_put_in() -> None:
    bundle = Bundle()
    stamp = Stamp.at(LATE, "westus")
    bundle.add(BlobChange("app", "sha256:a", b"aaa"))
    bundle.add(BlobChange("app", "sha256:a", b"aaa"))  # once
    bundle.add(ManifestChange("app", "sha256:m", images.OCI_MANIFEST, b"{}"))
    bundle.add(ManifestChange("app", "sha256:m", images.OCI_MANIFEST, b"{}", "v1", stamp))
    bundle.add(ManifestChange("app", "sha256:m", images.OCI_MANIFEST, b"{}", "v1", stamp, True))
    assert bundle.holds("app", "sha256:a") and not bundle.holds("other", "sha256:a")
    assert bundle.size == 3 + 2 * 3
    read = read_bundle(b"".join(bundle.encode()))
    assert read == bundle.changes and len(read) == 4  # each tag write goes


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"x\n{}",
        b"2\n{}",
        b'14\n{"changes": 1}',
        b'76\n{"changes": [{"kind": "blob", "repository": "a", "digest": "d", "size": 9}]}abc',
        b'76\n{"changes": [{"kind": "blob", "repository": "a", "digest": "d", "size": 1}]}abc',
        b'76\n{"changes": [{"kind": "tags", "repository": "a", "digest": "d", "size": 0}]}',
    ],
)
def test_what_is_not_a_bundle_is_refused(body: bytes) -> None:
    with pytest.raises(RequestInvalid):
        read_bundle(body)


def test_an_image_goes_as_one_request_and_its_tag_by_its_stamp(services: Services) -> None:
    app = create_app(services, background=False)
    one, two = _image(), _image()
    with TestClient(app, base_url="http://localhost:5000") as http:
        with services.meta.transaction() as tx:
            other = tx.create_registry("other", OTHER_HOST)
        for image in (one, two):
            _push_to_other(http, image)
        delivery = _sender(services, other, http)
        sent: list[str] = []
        http.event_hooks["request"].append(lambda request: sent.append(request.url.path))
        later, earlier = Stamp.at(LATE, "eastus"), Stamp.at(EARLY, "eastus")
        assert delivery.send_manifest("app", one.digest, _TagWrite("v1", later, False))
        assert delivery.send_manifest("app", two.digest, _TagWrite("v1", earlier, False))
        delivery.flush()
        assert sent == [f"{BASE}/changes"]  # two images, four blobs, one request

        tagged = http.get("http://localhost:5000/v2/app/manifests/v1")
        assert tagged.status_code == 200
        assert tagged.headers["docker-content-digest"] == one.digest  # the later stamp won
        for digest, data in two.blobs.items():
            assert http.get(f"http://localhost:5000/v2/app/blobs/{digest}").content == data
        assert http.get(f"http://localhost:5000/v2/app/manifests/{two.digest}").status_code == 200
        dockyard = next(r for r in services.registries.all() if r.name == "dockyard")
        with services.meta.engine.connect() as conn:
            payloads = conn.execute(
                select(events.c.payload).where(
                    events.c.registry_id == dockyard.id, events.c.action == "push"
                )
            ).scalars()
            callers = {orjson.loads(payload)["caller"]["identity"] for payload in payloads}
        assert callers == {"replication:eastus"}  # applied for the peer: not sent back


def test_a_bundle_goes_before_the_next_change_of_its_registry(services: Services) -> None:
    app = create_app(services, background=False)
    image = _image()
    with TestClient(app, base_url="http://localhost:5000") as http:
        with services.meta.transaction() as tx:
            other = tx.create_registry("other", OTHER_HOST)
        _push_to_other(http, image)
        delivery = _sender(services, other, http)
        sent: list[str] = []
        http.event_hooks["request"].append(lambda request: sent.append(request.url.path))
        pushed = TagMoved(
            registry_id=other.id, repository="app", digest=image.digest, size=1, tag="v1"
        )
        untagged = Untagged(registry_id=other.id, repository="app", digest=image.digest, tag="v1")
        delivery.send(pushed, Stamp.at(EARLY, "eastus"))
        delivery.send(untagged, Stamp.at(LATE, "eastus"))
        delivery.send(replace(pushed, tag="v2"), Stamp.at(LATE, "eastus"))
        assert sent == [f"{BASE}/changes", f"{BASE}/tags"]  # v2's push waits in the bundle
        delivery.flush()
        assert sent[2:] == [f"{BASE}/changes"]
        assert http.get("http://localhost:5000/v2/app/manifests/v1").status_code == 404
        assert http.get("http://localhost:5000/v2/app/manifests/v2").status_code == 200


def test_an_images_larger_blobs_go_side_by_side_each_on_its_lane(services: Services) -> None:
    app = create_app(services, background=False)
    image = _image(3 << 20, 2 << 20, (1 << 20) + 1, 1 << 20)  # the last small enough for a PUT
    with (
        TestClient(app, base_url="http://localhost:5000") as http,
        TestClient(app, base_url="http://localhost:5000") as first,
        TestClient(app, base_url="http://localhost:5000") as second,
    ):
        with services.meta.transaction() as tx:
            other = tx.create_registry("other", OTHER_HOST)
        _push_to_other(http, image)
        delivery = _sender(services, other, http, first, second)
        sent: dict[str, list[str]] = {"http": [], "first": [], "second": []}
        for name, client in (("http", http), ("first", first), ("second", second)):
            client.event_hooks["request"].append(
                lambda request, name=name: sent[name].append(request.method)
            )
        later = Stamp.at(LATE, "eastus")
        assert delivery.send_manifest("app", image.digest, _TagWrite("v1", later, False))
        delivery.flush()
        assert sent["http"] == ["POST"]  # the bundle: the config, the manifest and its tag
        # The lanes take every other larger blob: its link question, then its bytes.
        assert sent["first"] == ["POST", "POST", "PATCH", "PUT", "POST", "POST", "PATCH", "PUT"]
        assert sent["second"] == ["POST", "POST", "PATCH", "PUT", "POST", "PUT"]
        for digest, data in image.blobs.items():
            assert http.get(f"http://localhost:5000/v2/app/blobs/{digest}").content == data
        assert http.get("http://localhost:5000/v2/app/manifests/v1").status_code == 200


def test_a_blob_not_matching_its_digest_stops_the_bundle_before_its_manifest(
    services: Services,
) -> None:
    app = create_app(services, background=False)
    image = _image()
    bundle = Bundle()
    for digest, data in image.blobs.items():
        bundle.add(BlobChange("app", digest, data[:-1] + b"!"))
    bundle.add(
        replace(
            ManifestChange("app", image.digest, image.media_type, image.manifest),
            tag="v1",
            stamp=Stamp.at(LATE, "eastus"),
        )
    )
    with TestClient(app, base_url="http://localhost:5000") as http:
        refused = http.post(
            f"{BASE}/changes",
            content=b"".join(bundle.encode()),
            headers={**PEER, "Content-Type": MEDIA_TYPE},
        )
        assert refused.status_code == 400, refused.text
        assert http.get("/v2/app/manifests/v1").status_code == 404
        not_peer = http.post(f"{BASE}/changes", content=b"".join(Bundle().encode()))
        assert not_peer.status_code == 401
        empty = http.post(f"{BASE}/changes", content=b"".join(Bundle().encode()), headers=PEER)
        assert empty.json() == {"applied": []}
