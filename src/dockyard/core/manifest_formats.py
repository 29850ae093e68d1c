"""Manifest parsing and validation for every media type the registry stores.

Knows the JSON shapes of OCI image manifests and indexes, Docker schema2 manifests and
manifest lists, and OCI artifacts; says which blobs and child manifests a manifest
references. Never looks anything up: existence checks belong to the caller."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from dockyard.common.errors import DigestInvalid, ManifestInvalid, ManifestTooLarge
from dockyard.core.digests import parse_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
MAX_MANIFEST_SIZE = 4 * 1024 * 1024

# Layers that live elsewhere (Windows base layers): never required to be in the registry.
_FOREIGN_LAYERS = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int


@dataclass(frozen=True)
class Manifest:
    """A parsed, valid manifest. `body` is kept byte-exact: digests are over these bytes."""

    media_type: str
    body: bytes
    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None)

    @property
    def config_media_type(self) -> str | None:
        return self.blobs[0].media_type if self.media_type in IMAGE_TYPES else None


def parse_manifest(body: bytes, content_type: str | None) -> Manifest:
    """Validate `body` and say what it references; the media type comes from the
    request's Content-Type, or from the body's `mediaType` when the header is absent."""
    if len(body) > MAX_MANIFEST_SIZE:
        raise ManifestTooLarge(f"manifest is {len(body)} bytes; the limit is {MAX_MANIFEST_SIZE}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")
    body_type = doc.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise ManifestInvalid("mediaType must be a string")
    header_type = (content_type or "").split(";")[0].strip() or None
    media_type = header_type or body_type
    if header_type and header_type not in MANIFEST_TYPES and body_type in MANIFEST_TYPES:
        media_type = body_type
    if media_type not in MANIFEST_TYPES:
        raise ManifestInvalid(f"unsupported manifest media type: {media_type!r}")
    if body_type is not None and body_type != media_type:
        raise ManifestInvalid(
            f"mediaType {body_type!r} in the manifest does not match Content-Type {media_type!r}"
        )
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    if media_type in IMAGE_TYPES:
        return _parse_image(doc, media_type, body)
    return _parse_index(doc, media_type, body)


def _parse_image(doc: dict[str, Any], media_type: str, body: bytes) -> Manifest:
    config = _descriptor(doc.get("config"), "config")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ManifestInvalid("layers must be a list")
    blobs = [config]
    for i, raw in enumerate(layers):
        layer = _descriptor(raw, f"layers[{i}]")
        if layer.media_type not in _FOREIGN_LAYERS:
            blobs.append(layer)
    return Manifest(
        media_type=media_type,
        body=body,
        blobs=tuple(blobs),
        subject=_subject(doc),
        artifact_type=_artifact_type(doc) or config.media_type,
        annotations=_annotations(doc),
    )


def _parse_index(doc: dict[str, Any], media_type: str, body: bytes) -> Manifest:
    entries = doc.get("manifests")
    if not isinstance(entries, list):
        raise ManifestInvalid("manifests must be a list")
    children = tuple(_descriptor(raw, f"manifests[{i}]") for i, raw in enumerate(entries))
    return Manifest(
        media_type=media_type,
        body=body,
        children=children,
        subject=_subject(doc),
        artifact_type=_artifact_type(doc),
        annotations=_annotations(doc),
    )


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where} must be a descriptor object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}.mediaType is missing")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}.digest is missing")
    try:
        parse_digest(digest)
    except DigestInvalid:
        raise ManifestInvalid(f"{where}.digest is invalid: {digest!r}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}.size must be a non-negative integer")
    return Descriptor(media_type, digest, size)


def _subject(doc: dict[str, Any]) -> Descriptor | None:
    raw = doc.get("subject")
    return None if raw is None else _descriptor(raw, "subject")


def _artifact_type(doc: dict[str, Any]) -> str | None:
    value = doc.get("artifactType")
    if value is not None and (not isinstance(value, str) or not value):
        raise ManifestInvalid("artifactType must be a non-empty string")
    return value


def _annotations(doc: dict[str, Any]) -> dict[str, str] | None:
    value = doc.get("annotations")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ManifestInvalid("annotations must map strings to strings")
    return value
