"""SBOMs stored beside the image they describe: each document an OCI image manifest in
the image's repository whose `subject` is the image, `artifactType` the document's
media type (`application/spdx+json`, `application/vnd.cyclonedx+json`, as trivy's
referrer plugin and `oras attach` write them), the empty config, and one layer, the
document. The referrers API, `oras discover` and `/acr/v1` show them as any other
referrer; `created-by: dockyard` tells Dockyard's from those a user attached.

Pushed as a client would, through `Uploads` and `Manifests` (so locks, quotas and push
policies apply), by digest only: no tag."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from dockyard.core.digests import digest_bytes
from dockyard.core.manifest_formats import OCI_MANIFEST
from dockyard.metadata.records import RegistryRecord

if TYPE_CHECKING:
    from dockyard.services import Services

EMPTY_JSON = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = b"{}"
CREATED = "org.opencontainers.image.created"
TITLE = "org.opencontainers.image.title"
CREATED_BY = "created-by"
DOCKYARD = "dockyard"


@dataclass(frozen=True)
class ImageRef:
    """The manifest an SBOM refers to: the `subject` descriptor."""

    media_type: str
    digest: str
    size: int


def attached(services: Services, registry: RegistryRecord, repo: str, digest: str) -> set[str]:
    """The artifact types of the SBOMs Dockyard already attached to `repo@digest`."""
    return {
        ref.artifact_type
        for ref in services.meta.referrers(registry.id, repo, digest, None)
        if ref.artifact_type
        and ref.annotations
        and orjson.loads(ref.annotations).get(CREATED_BY) == DOCKYARD
    }


async def attach(
    services: Services,
    registry: RegistryRecord,
    repo: str,
    image: ImageRef,
    artifact_type: str,
    title: str,
    document: bytes,
    created: str,
) -> str:
    """Store `document` as a referrer of `image`; returns the referrer's digest. The
    same arguments store the same bytes: a second call changes nothing."""
    for blob in (EMPTY_BLOB, document):
        digest = digest_bytes(blob, "sha256")
        if services.meta.linked_blob(registry.id, repo, digest) is None:
            await services.uploads.upload_whole(registry, repo, digest, _once(blob), len(blob))
    manifest = orjson.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": _descriptor(EMPTY_JSON, EMPTY_BLOB),
            "layers": [_descriptor(artifact_type, document) | {"annotations": {TITLE: title}}],
            "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.size},
            "annotations": {CREATED: created, CREATED_BY: DOCKYARD},
        }
    )
    digest = digest_bytes(manifest, "sha256")
    await services.manifests.put_in_turn(registry, repo, digest, manifest, OCI_MANIFEST)
    return digest


def _descriptor(media_type: str, blob: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": digest_bytes(blob, "sha256"), "size": len(blob)}


async def _once(blob: bytes) -> AsyncIterator[bytes]:
    yield blob
