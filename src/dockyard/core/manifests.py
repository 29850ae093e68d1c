"""Storing, reading and deleting manifests and tags in a repository.

A manifest is accepted only when every blob and child manifest it references is in the
repository; the push, tag move and outbox event commit in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from dockyard.core.digests import algorithm_of, digest_bytes, is_digest, parse_digest
from dockyard.core.errors import (
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
)
from dockyard.core.manifest_formats import Descriptor, Manifest, parse_manifest
from dockyard.core.names import check_repository_name, check_tag
from dockyard.metadata.records import ManifestContent, ManifestRecord, RegistryRecord
from dockyard.metadata.store import Metadata, Transaction


@dataclass(frozen=True)
class PushResult:
    digest: str
    subject: str | None


class Manifests:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def get(self, registry: RegistryRecord, repo: str, reference: str) -> ManifestRecord:
        if is_digest(reference):
            record = self._meta.manifest_by_digest(registry.id, repo, reference)
        else:
            record = self._meta.manifest_by_tag(registry.id, repo, reference)
        if record is None:
            check_repository_name(repo)
            if is_digest(reference):
                parse_digest(reference)
            else:
                check_tag(reference)
            raise ManifestUnknown(detail={"name": repo, "reference": reference})
        return record

    def put(
        self,
        registry: RegistryRecord,
        repo: str,
        reference: str,
        body: bytes,
        content_type: str | None,
    ) -> PushResult:
        check_repository_name(repo)
        by_digest = is_digest(reference)
        if by_digest:
            parse_digest(reference)
        else:
            check_tag(reference)
        manifest = parse_manifest(body, content_type)
        digest = digest_bytes(body, algorithm_of(reference) if by_digest else "sha256")
        if by_digest and digest != reference:
            raise DigestInvalid(
                f"manifest digest is {digest}, not {reference}", detail={"digest": reference}
            )
        with self._meta.transaction() as tx:
            repo_id = tx.ensure_repository(registry.id, repo, touch=True)
            _check_references(tx, repo_id, manifest)
            created = tx.put_manifest(repo_id, _content(digest, manifest))
            moved = not by_digest and tx.set_tag(repo_id, reference, digest) != digest
            if created or moved:
                tx.emit(
                    registry.id,
                    "push",
                    repo,
                    _event_target(repo, digest, manifest, None if by_digest else reference),
                )
        return PushResult(digest, manifest.subject.digest if manifest.subject else None)

    def delete(self, registry: RegistryRecord, repo: str, reference: str) -> None:
        """By digest: the manifest and every tag on it. By tag: only the tag."""
        check_repository_name(repo)
        by_digest = is_digest(reference)
        if by_digest:
            parse_digest(reference)
        else:
            check_tag(reference)
        with self._meta.transaction() as tx:
            repo_id = tx.repository_id(registry.id, repo)
            if repo_id is None:
                raise ManifestUnknown(detail={"name": repo, "reference": reference})
            if by_digest:
                tags = tx.delete_manifest(repo_id, reference)
                if tags is None:
                    raise ManifestUnknown(detail={"name": repo, "reference": reference})
                tx.emit(
                    registry.id,
                    "delete",
                    repo,
                    {"repository": repo, "digest": reference, "tags": tags},
                )
            else:
                digest = tx.delete_tag(repo_id, reference)
                if digest is None:
                    raise ManifestUnknown(detail={"name": repo, "reference": reference})
                tx.emit(
                    registry.id,
                    "untag",
                    repo,
                    {"repository": repo, "digest": digest, "tag": reference},
                )


def _check_references(tx: Transaction, repo_id: int, manifest: Manifest) -> None:
    _require(manifest.blobs, tx.linked_blob_sizes(repo_id, (d.digest for d in manifest.blobs)))
    _require(manifest.children, tx.manifest_sizes(repo_id, (d.digest for d in manifest.children)))


def _require(wanted: tuple[Descriptor, ...], present: dict[str, int]) -> None:
    for descriptor in wanted:
        size = present.get(descriptor.digest)
        if size is None:
            raise ManifestBlobUnknown(
                f"{descriptor.digest} is not in the repository",
                detail={"digest": descriptor.digest},
            )
        if size != descriptor.size:
            raise ManifestInvalid(
                f"{descriptor.digest} has size {size}, the manifest says {descriptor.size}",
                detail={"digest": descriptor.digest},
            )


def _content(digest: str, manifest: Manifest) -> ManifestContent:
    return ManifestContent(
        digest=digest,
        media_type=manifest.media_type,
        body=manifest.body,
        artifact_type=manifest.artifact_type,
        subject_digest=manifest.subject.digest if manifest.subject else None,
        annotations=orjson.dumps(manifest.annotations).decode() if manifest.annotations else None,
        blob_digests=tuple(d.digest for d in manifest.blobs),
        child_digests=tuple(d.digest for d in manifest.children),
    )


def _event_target(repo: str, digest: str, manifest: Manifest, tag: str | None) -> dict:
    target = {
        "repository": repo,
        "digest": digest,
        "mediaType": manifest.media_type,
        "size": len(manifest.body),
    }
    if tag is not None:
        target["tag"] = tag
    return target
