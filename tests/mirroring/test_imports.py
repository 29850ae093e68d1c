"""`dockyard.mirroring.imports` on real collaborators (SQLite, filesystem stores): image
names, copies between two registries of one server (store to store, every platform),
tags moved only when forced, locks, and the push events of the outbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import images
import pytest
from sqlalchemy import select

from dockyard.common.errors import Locked, NameInvalid, RegistryHostInvalid, TagExists
from dockyard.core.blobs import Blobs
from dockyard.core.manifests import Manifests
from dockyard.core.registries import Registries
from dockyard.core.uploads import Uploads
from dockyard.metadata import schema as t
from dockyard.metadata.attributes import AttributeWrites
from dockyard.metadata.network import NetworkStore
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.mirroring.imports import (
    ImageReference,
    Importer,
    Reader,
    SourceReads,
    parse_image,
    parse_registry_uri,
)
from dockyard.storage.stores import BlobStores

A, B = "sha256:" + "a" * 64, "sha256:" + "b" * 64
ANYONE = Reader(None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("busybox", ImageReference(None, "busybox", "latest")),
        ("team/app:1.0", ImageReference(None, "team/app", "1.0")),
        ("localhost/app", ImageReference("localhost", "app", "latest")),
        ("127.0.0.1:5001/lib/bb:1", ImageReference("127.0.0.1:5001", "lib/bb", "1")),
        ("docker.io/ubuntu:24.04", ImageReference("docker.io", "library/ubuntu", "24.04")),
        (f"ghcr.io/o/r@{A}", ImageReference("ghcr.io", "o/r", None, A)),
        (f"myhost:5000/app:v1@{B}", ImageReference("myhost:5000", "app", None, B)),
    ],
)
def test_parse_image(text: str, expected: ImageReference) -> None:
    assert parse_image(text) == expected


def test_parse_image_refuses_bad_names() -> None:
    with pytest.raises(NameInvalid):
        parse_image("example.com/UPPER:1")
    with pytest.raises(RegistryHostInvalid):
        parse_image("example.com:5000./app:1")


@pytest.mark.parametrize(
    ("uri", "image", "expected"),
    [
        ("127.0.0.1:5001", "lib/bb:1", ImageReference("127.0.0.1:5001", "lib/bb", "1")),
        ("https://Reg.Example.com/", "app", ImageReference("reg.example.com", "app", "latest")),
        (
            "http://reg.example.com.:0443/team",
            "app:v1",
            ImageReference("reg.example.com:443", "team/app", "v1"),
        ),
        ("docker.io", "ubuntu:24.04", ImageReference("docker.io", "library/ubuntu", "24.04")),
        ("myregistry", "app:1", ImageReference("myregistry", "app", "1")),
    ],
)
def test_parse_registry_uri(uri: str, image: str, expected: ImageReference) -> None:
    """One spelling of the registry, whatever the URI's; a path is the repository's prefix;
    a registry with no dot or port is still the registry (parse_image would take it for
    a repository's first component)."""
    assert parse_registry_uri(uri, image) == expected


@pytest.mark.parametrize(
    "uri",
    [
        " reg.example.com",
        "reg.example.com\n",
        "reg.example.com:5000.",
        "ftp://reg.example.com",
        "u@reg.example.com",
        "reg.example.com/UP",
        "",
    ],
)
def test_parse_registry_uri_refuses_what_is_no_registry(uri: str) -> None:
    with pytest.raises(RegistryHostInvalid, match="registryUri"):
        parse_registry_uri(uri, "app:1")


class Recorder:
    def __init__(self) -> None:
        self.total = self.done = 0

    def planned(self, size: int) -> None:
        self.total += size

    def moved(self, size: int) -> None:
        self.done += size


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@pytest.fixture
def other(meta: Metadata, registry: RegistryRecord) -> RegistryRecord:
    """A second registry on the same server."""
    with meta.transaction() as tx:
        return tx.create_registry("fabrikam", "fabrikam.registry.example")


@pytest.fixture
def parts(
    meta: Metadata, stores: BlobStores, clock, other: RegistryRecord
) -> tuple[Importer, Manifests, Uploads]:
    registries = Registries(meta, "contoso")
    registries.reload()
    blobs, uploads, manifests = (
        Blobs(meta, stores),
        Uploads(meta, stores, clock),
        Manifests(meta, stores),
    )
    reads = SourceReads(registries, None, NetworkStore(meta))  # authentication off
    return Importer(meta, reads, blobs, uploads, manifests), manifests, uploads


def push(parts, registry: RegistryRecord, repo: str, tag: str, item) -> None:
    _, manifests, uploads = parts
    children = item.children if isinstance(item, images.Index) else (item,)
    for child in children:
        for digest, data in child.blobs.items():
            asyncio.run(uploads.upload_whole(registry, repo, digest, _body(data)))
        manifests.put(registry, repo, child.digest, child.manifest, child.media_type)
    manifests.put(registry, repo, tag, item.manifest, item.media_type)


def pushes(meta: Metadata, registry: RegistryRecord) -> list[str]:
    with meta.engine.connect() as conn:
        rows = conn.execute(
            select(t.events.c.repository).where(
                t.events.c.registry_id == registry.id, t.events.c.action == "push"
            )
        )
        return list(rows.scalars())


def test_import_between_registries_copies_store_to_store(parts, meta, stores, registry, other):
    importer, manifests, _ = parts
    index = images.busybox_index()
    push(parts, registry, "src/bb", "multi", index)

    progress = Recorder()
    source = parse_image(f"{registry.login_server}/src/bb:multi")
    result = asyncio.run(
        importer.run(other, source, "dst/bb", "multi", progress=progress, reader=ANYONE)
    )

    assert result.digest == index.digest and result.manifests == 3
    blobs = {d: b for child in index.children for d, b in child.blobs.items()}
    assert result.blobs_copied == len(blobs) and result.blobs_linked == 0
    assert progress.total == progress.done == sum(len(b) for b in blobs.values())
    target = stores.for_registry("fabrikam")
    for digest, data in blobs.items():
        with target.open(digest) as copied:
            assert copied.read() == data
    assert manifests.get(other, "dst/bb", "multi").body == index.manifest
    # The push events of a push: both children by digest and the index under its tag.
    assert pushes(meta, other) == ["dst/bb"] * 3

    # Into a second repository of the same registry: linked, no byte copied again.
    again = asyncio.run(importer.run(other, source, "dst/again", "multi", reader=ANYONE))
    assert again.blobs_copied == 0 and again.blobs_linked == len(blobs)


def test_import_moves_a_tag_only_when_forced(parts, meta, registry):
    importer, manifests, _ = parts
    amd, arm = images.busybox_image(), images.busybox_image("arm64")
    push(parts, registry, "src", "amd", amd)
    push(parts, registry, "src", "arm", arm)
    asyncio.run(importer.run(registry, parse_image("src:amd"), "dst", "1", reader=ANYONE))
    with pytest.raises(TagExists, match="dst:1 exists"):
        asyncio.run(importer.run(registry, parse_image("src:arm"), "dst", "1", reader=ANYONE))
    assert manifests.get(registry, "dst", "1").digest == amd.digest
    asyncio.run(
        importer.run(registry, parse_image("src:arm"), "dst", "1", force=True, reader=ANYONE)
    )
    assert manifests.get(registry, "dst", "1").digest == arm.digest


def test_import_honours_a_write_lock(parts, meta, registry):
    importer, _, _ = parts
    push(parts, registry, "src", "amd", images.busybox_image())
    push(parts, registry, "locked", "old", images.busybox_image("arm64"))
    with meta.transaction() as tx:
        writes = AttributeWrites(tx)
        found = writes.repository_locks(registry.id, "locked")
        assert found is not None and writes.set_locks(found.id, {"write_enabled": False})
    with pytest.raises(Locked):
        asyncio.run(importer.run(registry, parse_image("src:amd"), "locked", "new", reader=ANYONE))
