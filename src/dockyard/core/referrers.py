"""The referrers API: manifests whose `subject` is a given digest, as an OCI image index."""

from __future__ import annotations

import orjson

from dockyard.common.names import check_repository_name
from dockyard.core.digests import parse_digest
from dockyard.core.manifest_formats import OCI_INDEX
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata


class Referrers:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def index(
        self, registry: RegistryRecord, repo: str, subject: str, artifact_type: str | None
    ) -> bytes:
        check_repository_name(repo)
        parse_digest(subject)
        descriptors = []
        for ref in self._meta.referrers(registry.id, repo, subject, artifact_type):
            descriptor: dict = {"mediaType": ref.media_type, "digest": ref.digest, "size": ref.size}
            if ref.artifact_type:
                descriptor["artifactType"] = ref.artifact_type
            if ref.annotations:
                descriptor["annotations"] = orjson.loads(ref.annotations)
            descriptors.append(descriptor)
        return orjson.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
