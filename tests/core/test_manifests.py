"""`dockyard.core.manifests`: what a push records for `/acr/v1` (platform, config media
type, image size), and the locks on pushes, pulls, tag moves and deletes, on a real
SQLite `Metadata` and filesystem blob stores."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

import orjson
import pytest
from sqlalchemy import event, select

from dockyard.common.errors import Locked, ManifestUnknown, NameUnknown
from dockyard.core.manifest_formats import OCI_INDEX, OCI_MANIFEST
from dockyard.core.manifests import MAX_CONFIG_READ, Manifests, RepositoryDeleted
from dockyard.core.uploads import Uploads
from dockyard.metadata import schema as t
from dockyard.metadata.attributes import Attributes, AttributeWrites
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.stores import BlobStores

REPO = "team/app"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": digest_of(data), "size": len(data), **extra}


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Pusher:
    """Pushes blobs and manifests the way the API does, through core."""

    def __init__(self, manifests: Manifests, uploads: Uploads, registry: RegistryRecord):
        self.manifests, self.uploads, self.registry = manifests, uploads, registry

    def blob(self, data: bytes, repo: str = REPO) -> str:
        digest = digest_of(data)
        asyncio.run(self.uploads.upload_whole(self.registry, repo, digest, _body(data)))
        return digest

    def image(
        self,
        reference: str | None,
        config: bytes,
        layers: tuple[bytes, ...] = (b"layer",),
        config_type: str = OCI_CONFIG,
        repo: str = REPO,
    ) -> tuple[str, bytes]:
        for data in (config, *layers):
            self.blob(data, repo)
        body = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(config_type, config),
                "layers": [descriptor(LAYER, layer) for layer in layers],
            }
        )
        reference = reference or digest_of(body)  # None: by its digest
        return self.manifests.put(self.registry, repo, reference, body, OCI_MANIFEST).digest, body

    def index(self, reference: str, children: list[tuple[str, bytes]]) -> str:
        body = orjson.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [descriptor(OCI_MANIFEST, child) for _, child in children],
            }
        )
        return self.manifests.put(self.registry, REPO, reference, body, OCI_INDEX).digest


def config(architecture: str = "amd64", os: str = "linux", **extra: object) -> bytes:
    return json.dumps({"architecture": architecture, "os": os, **extra}).encode()


@pytest.fixture
def manifests(meta: Metadata, stores: BlobStores) -> Manifests:
    return Manifests(meta, stores)


@pytest.fixture
def push(manifests: Manifests, meta: Metadata, stores: BlobStores, clock, registry) -> Pusher:
    return Pusher(manifests, Uploads(meta, stores, clock), registry)


def lock(meta: Metadata, registry: RegistryRecord, repo: str = REPO, **target) -> None:
    where = {k: v for k, v in target.items() if k in ("tag", "digest")}
    changes = {k: v for k, v in target.items() if k not in where}
    with meta.transaction() as tx:
        writes = AttributeWrites(tx)
        found = writes.repository_locks(registry.id, repo)
        assert found is not None and writes.set_locks(found.id, changes, **where)


def event_actions(meta: Metadata) -> list[str]:
    with meta.engine.connect() as conn:
        return list(conn.execute(select(t.events.c.action).order_by(t.events.c.id)).scalars())


# -- what a push records ---------------------------------------------------------------------


def test_push_records_platform_config_type_and_image_size(push: Pusher, meta, registry):
    image_config = config("arm64", variant="v8")
    digest, _ = push.image("v1", image_config, (b"a" * 100, b"b" * 50))
    found = Attributes(meta).manifest(registry.id, REPO, digest)
    assert (found.architecture, found.os) == ("arm64", "linux")
    assert found.config_media_type == OCI_CONFIG
    assert found.image_size == len(image_config) + 150


def test_index_size_is_its_childrens_and_references_their_platforms(push: Pusher, meta, registry):
    amd = push.image(None, config("amd64"), (b"amd layer",))
    arm = push.image(None, config("arm64"), (b"arm layer" * 10,))
    index = push.index("multi", [amd, arm])
    found = Attributes(meta).manifest(registry.id, REPO, index)
    children = {d: Attributes(meta).manifest(registry.id, REPO, d) for d, _ in (amd, arm)}
    assert found.image_size == sum(child.image_size for child in children.values())
    assert found.architecture is None and found.config_media_type is None
    assert {(c.digest, c.architecture) for c in found.references} == {
        (amd[0], "amd64"),
        (arm[0], "arm64"),
    }


@pytest.mark.parametrize(
    ("config_bytes", "config_type"),
    [
        (config(padding="x" * MAX_CONFIG_READ), OCI_CONFIG),  # too big to read
        (b"\x00\x01 not json", "application/octet-stream"),
        (b'{"name":"chart","version":"1.0.0"}', "application/vnd.cncf.helm.config.v1+json"),
        (b'["a list"]', OCI_CONFIG),
        (config("x" * 33, "y" * 33), OCI_CONFIG),  # longer than any real platform word
    ],
    ids=["too-big", "binary", "helm", "not-an-object", "too-long"],
)
def test_configs_without_a_platform_push_without_one(
    push: Pusher, meta, registry, config_bytes: bytes, config_type: str
) -> None:
    digest, _ = push.image("v1", config_bytes, config_type=config_type)
    found = Attributes(meta).manifest(registry.id, REPO, digest)
    assert (found.architecture, found.os) == (None, None)
    assert found.config_media_type == config_type
    assert found.image_size == len(config_bytes) + len(b"layer")


# -- locks on pushes -------------------------------------------------------------------------


def test_write_locked_repository_refuses_pushes(push: Pusher, meta, registry) -> None:
    push.image("v1", config())
    lock(meta, registry, write_enabled=False)
    with pytest.raises(Locked, match="push refused"):
        push.image("v2", config("arm64"))
    with pytest.raises(Locked, match="push refused"):
        push.blob(b"another blob")
    assert meta.tags(registry.id, REPO, None, 10) == ["v1"]
    lock(meta, registry, write_enabled=True)
    push.image("v2", config("arm64"))
    assert meta.tags(registry.id, REPO, None, 10) == ["v1", "v2"]


def test_write_locked_tag_does_not_move(push: Pusher, manifests, meta, registry) -> None:
    first, body = push.image("v1", config())
    lock(meta, registry, tag="v1", write_enabled=False)
    events = event_actions(meta)
    with pytest.raises(Locked, match='moving the tag refused: tag "team/app:v1"'):
        push.image("v1", config("arm64"))
    assert manifests.get(registry, REPO, "v1").digest == first
    # The refused push left nothing: not its manifest, not an event.
    assert len(Attributes(meta).manifests(registry.id, REPO, last=None, n=10)) == 1
    assert event_actions(meta) == events
    # Pushing the same content again is no move; other tags are free.
    manifests.put(registry, REPO, "v1", body, OCI_MANIFEST)
    push.image("v2", config("arm64"))
    # deleteEnabled=false alone does not stop a move.
    lock(meta, registry, tag="v2", write_enabled=True, delete_enabled=False)
    push.image("v2", config("s390x"))


# -- locks on pulls --------------------------------------------------------------------------


@pytest.mark.parametrize("target", [{}, {"tag": "v1"}, {"digest": "pushed"}])
def test_read_locks_refuse_pulls_even_when_cached(
    push: Pusher, manifests, meta, registry, target: dict
) -> None:
    digest, _ = push.image("v1", config())
    target = {k: digest if v == "pushed" else v for k, v in target.items()}
    assert manifests.get(registry, REPO, "v1").digest == digest  # cached now
    lock(meta, registry, read_enabled=False, **target)
    with pytest.raises(Locked, match="pull refused"):
        manifests.get(registry, REPO, "v1")
    if "tag" in target:  # the manifest itself is still readable by digest
        assert manifests.get(registry, REPO, digest).digest == digest
    else:
        with pytest.raises(Locked, match="pull refused"):
            manifests.get(registry, REPO, digest)


# -- locks on deletes ------------------------------------------------------------------------


def test_untag_is_refused_by_the_tags_locks_and_the_repositorys_write_lock(
    push: Pusher, manifests, meta, registry
) -> None:
    push.image("v1", config())
    lock(meta, registry, tag="v1", delete_enabled=False)
    with pytest.raises(Locked, match='tag "team/app:v1" has deleteEnabled=false'):
        manifests.delete(registry, REPO, "v1")
    lock(meta, registry, tag="v1", delete_enabled=True)
    lock(meta, registry, write_enabled=False)
    with pytest.raises(Locked, match='repository "team/app" has writeEnabled=false'):
        manifests.untag(registry, REPO, "v1")
    lock(meta, registry, write_enabled=True, delete_enabled=False)
    manifests.untag(registry, REPO, "v1")
    assert meta.tags(registry.id, REPO, None, 10) == []
    with pytest.raises(ManifestUnknown):
        manifests.untag(registry, REPO, "v1")


def test_manifest_delete_is_refused_by_its_locks_and_its_tags(
    push: Pusher, manifests, meta, registry
) -> None:
    digest, _ = push.image("v1", config())
    lock(meta, registry, tag="v1", write_enabled=False)
    with pytest.raises(Locked, match="delete of its manifest refused"):
        manifests.delete(registry, REPO, digest)
    manifests.get(registry, REPO, digest)
    lock(meta, registry, tag="v1", write_enabled=True)
    lock(meta, registry, digest=digest, delete_enabled=False)
    with pytest.raises(Locked, match=r"manifest .* has deleteEnabled=false"):
        manifests.delete_manifest(registry, REPO, digest)
    lock(meta, registry, digest=digest, delete_enabled=True)
    manifests.delete_manifest(registry, REPO, digest)
    with pytest.raises(ManifestUnknown):
        manifests.get(registry, REPO, digest)
    assert event_actions(meta)[-1] == "delete"


def test_repository_delete(push: Pusher, manifests, meta, registry) -> None:
    image = push.image("v1", config())
    digest = image[0]
    index = push.index("multi", [image])
    push.image("v1", config(), repo="other")
    lock(meta, registry, digest=digest, write_enabled=False)
    with pytest.raises(Locked, match="repository delete refused: manifest"):
        manifests.delete_repository(registry, REPO)
    lock(meta, registry, digest=digest, write_enabled=True)
    lock(meta, registry, delete_enabled=False)
    with pytest.raises(Locked, match='repository "team/app" has deleteEnabled=false'):
        manifests.delete_repository(registry, REPO)
    lock(meta, registry, delete_enabled=True)
    deleted = manifests.delete_repository(registry, REPO)
    assert deleted == RepositoryDeleted(sorted([digest, index]), ["multi", "v1"])
    assert not meta.repository_exists(registry.id, REPO)
    assert meta.manifest_by_tag(registry.id, "other", "v1") is not None
    with meta.engine.connect() as conn:
        payload = conn.execute(
            select(t.events.c.payload).order_by(t.events.c.id.desc()).limit(1)
        ).scalar_one()
    assert orjson.loads(payload) == {
        "repository": REPO,
        "manifestsDeleted": deleted.digests,
        "tagsDeleted": deleted.tags,
        # What webhooks say of each deleted manifest.
        "manifests": sorted(
            [
                {"digest": index, "mediaType": "application/vnd.oci.image.index.v1+json"},
                {
                    "digest": digest,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "configMediaType": "application/vnd.oci.image.config.v1+json",
                },
            ],
            key=lambda m: m["digest"],
        ),
    }
    with pytest.raises(NameUnknown):
        manifests.delete_repository(registry, REPO)


def test_pull_by_tag_with_its_lock_check_is_one_query_then_a_cache_hit(
    push: Pusher, manifests: Manifests, meta: Metadata, registry
) -> None:
    digest, _ = push.image("v1", config())
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement)

    event.listen(meta.engine, "before_cursor_execute", record)
    try:
        assert manifests.get(registry, REPO, "v1").digest == digest
        assert len(statements) == 1, statements
        assert manifests.get(registry, REPO, "v1").digest == digest
        assert manifests.get(registry, REPO, digest).digest == digest
        assert len(statements) == 2, statements  # the tag again: cached; by digest: one
        lock(meta, registry, tag="v1", read_enabled=False)
        statements.clear()
        with pytest.raises(Locked):
            manifests.get(registry, REPO, "v1")
        assert len(statements) == 1, statements
    finally:
        event.remove(meta.engine, "before_cursor_execute", record)
