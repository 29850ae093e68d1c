"""Finding a manifest's signatures where the usual tools put them: Notation's as
referrers (artifact type, or the legacy config media type, `application/vnd.cncf.
notary.signature`; one layer, the JWS or COSE envelope), cosign's as referrers
(`application/vnd.dev.cosign.artifact.sig.v1+json`) or under the tag
`sha256-<hex>.sig`, one simple-signing layer per signature. Each is read and its
envelope's own integrity checked; whether its signer is trusted is `verification`'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import orjson

from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.signing import cose, notation
from dockyard.signing.cosign import CosignSignature, parse_layer
from dockyard.signing.errors import SignatureInvalid
from dockyard.signing.media_types import (
    COSE_ENVELOPE,
    COSIGN_SIGNATURE,
    JWS_ENVELOPE,
    NOTATION_SIGNATURE,
    SIGSTORE_BUNDLE,
    SIMPLE_SIGNING,
    cosign_tag,
)
from dockyard.storage.stores import BlobStores

# Envelopes and payloads are a few KiB; a bigger blob is not read.
MAX_SIGNATURE_BLOB = 256 * 1024


@dataclass(frozen=True)
class FoundSignature:
    """One signature of a manifest: where it is (`source`: the signature manifest's
    digest, or the cosign tag) and what it holds; `problem` when it could not be read
    or its envelope does not verify."""

    kind: Literal["notation", "cosign", "sigstore-bundle"]
    source: str
    notation: notation.NotationSignature | None = None
    cosign: CosignSignature | None = None
    problem: str | None = None


class Signatures:
    """The signatures of manifests of one process's registries."""

    def __init__(self, meta: Metadata, stores: BlobStores) -> None:
        self._meta = meta
        self._stores = stores

    def sources(self, registry: RegistryRecord, repo: str, digest: str) -> tuple[str, ...]:
        """Which signature manifests `digest` has (their digests): what `find` would
        read, named without reading it, so a verdict worked out before can be reused
        while they stay the same."""
        kinds = (NOTATION_SIGNATURE, COSIGN_SIGNATURE, SIGSTORE_BUNDLE)
        found = [
            ref.digest
            for ref in self._meta.referrers(registry.id, repo, digest, None)
            if ref.artifact_type in kinds
        ]
        record = self._meta.manifest_by_tag(registry.id, repo, cosign_tag(digest))
        if record is not None:
            found.append(record.digest)
        return tuple(found)

    def find(self, registry: RegistryRecord, repo: str, digest: str) -> list[FoundSignature]:
        found: list[FoundSignature] = []
        for ref in self._meta.referrers(registry.id, repo, digest, None):
            if ref.artifact_type == NOTATION_SIGNATURE:
                found.append(self._notation(registry, repo, ref.digest))
            elif ref.artifact_type == COSIGN_SIGNATURE:
                found += self._cosign(registry, repo, ref.digest, ref.digest)
            elif ref.artifact_type == SIGSTORE_BUNDLE:
                found.append(
                    FoundSignature(
                        "sigstore-bundle",
                        ref.digest,
                        problem="Sigstore bundles are recognised, not verified, by Dockyard",
                    )
                )
        tag = cosign_tag(digest)
        record = self._meta.manifest_by_tag(registry.id, repo, tag)
        if record is not None:
            found += self._cosign(registry, repo, record.digest, tag, record.body)
        return found

    def _manifest(self, registry: RegistryRecord, repo: str, digest: str) -> dict:
        record = self._meta.manifest_by_digest(registry.id, repo, digest)
        if record is None:
            raise SignatureInvalid("the signature manifest is gone")
        return orjson.loads(record.body)

    def _blob(self, registry: RegistryRecord, descriptor: dict) -> bytes:
        size, digest = descriptor.get("size"), descriptor.get("digest")
        if not isinstance(size, int) or not isinstance(digest, str) or size > MAX_SIGNATURE_BLOB:
            raise SignatureInvalid("the signature's blob is missing or too big")
        with self._stores.for_registry(registry.name).open(digest) as blob:
            data = blob.read(MAX_SIGNATURE_BLOB + 1)
        if len(data) != size:
            raise SignatureInvalid("the signature's blob is not the size its descriptor says")
        return data

    def _notation(self, registry: RegistryRecord, repo: str, digest: str) -> FoundSignature:
        try:
            layers = self._manifest(registry, repo, digest).get("layers")
            if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
                raise SignatureInvalid("a Notation signature manifest has exactly one layer")
            envelope_type = layers[0].get("mediaType")
            envelope = self._blob(registry, layers[0])
            if envelope_type == JWS_ENVELOPE:
                parsed = notation.parse_jws(envelope)
            elif envelope_type == COSE_ENVELOPE:
                parsed = cose.parse_cose(envelope)
            else:
                raise SignatureInvalid(f"unknown signature envelope {envelope_type!r}")
        except (SignatureInvalid, FileNotFoundError, orjson.JSONDecodeError) as exc:
            return FoundSignature("notation", digest, problem=_reason(exc))
        return FoundSignature("notation", digest, notation=parsed)

    def _cosign(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        source: str,
        body: bytes | None = None,
    ) -> list[FoundSignature]:
        try:
            doc = orjson.loads(body) if body is not None else self._manifest(registry, repo, digest)
            layers = doc.get("layers")
            if not isinstance(layers, list):
                raise SignatureInvalid("the cosign signature manifest has no layers")
        except (SignatureInvalid, orjson.JSONDecodeError) as exc:
            return [FoundSignature("cosign", source, problem=_reason(exc))]
        found = []
        for layer in layers:
            if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
                continue
            try:
                payload = self._blob(registry, layer)
                annotations = layer.get("annotations")
                if not isinstance(annotations, dict):
                    raise SignatureInvalid("the cosign layer has no annotations")
                found.append(
                    FoundSignature("cosign", source, cosign=parse_layer(payload, annotations))
                )
            except (SignatureInvalid, FileNotFoundError) as exc:
                found.append(FoundSignature("cosign", source, problem=_reason(exc)))
        return found


def _reason(exc: Exception) -> str:
    if isinstance(exc, SignatureInvalid):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "the signature's blob is not in storage"
    return "the signature manifest is not JSON"
