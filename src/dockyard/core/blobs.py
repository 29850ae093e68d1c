"""Reading and unlinking blobs through a repository: a blob is visible to a repository
only through its link row, whatever the store holds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import BinaryIO

from dockyard.common.errors import BlobUnknown, NameInvalid
from dockyard.common.names import check_repository_name
from dockyard.core import events, locks
from dockyard.core.digests import parse_digest
from dockyard.metadata.attributes import Attributes, AttributeWrites
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores


@dataclass(frozen=True)
class BlobLocation:
    """A readable blob: its size, and the store to read it from."""

    digest: str
    size: int
    store: BlobStore

    async def open(self) -> BinaryIO:
        """The blob's bytes, to `read`: opened in a thread from a remote store (S3
        follows the blob's link with a HEAD), on the event loop from local files."""
        if self.store.remote:
            return await asyncio.to_thread(self.store.open, self.digest)
        return self.store.open(self.digest)

    async def presigned_url(self) -> str | None:
        """A URL the client may fetch the bytes from directly, if the store makes them
        (S3: signed offline after one HEAD that follows the blob's link, in a thread)."""
        presign = getattr(self.store, "presigned_url", None)
        if presign is None:
            return None
        return await asyncio.to_thread(presign, self.digest)

    async def read(self, source: BinaryIO, size: int) -> bytes:
        """A chunk of `source` (from `open`): in a thread from a remote store (a read may
        wait on a GET), on the event loop from local files."""
        if self.store.remote:
            return await asyncio.to_thread(source.read, size)
        return source.read(size)


class Blobs:
    def __init__(self, meta: Metadata, stores: BlobStores) -> None:
        self._meta = meta
        self._attributes = Attributes(meta)
        self._stores = stores

    def locate(self, registry: RegistryRecord, repo: str, digest: str) -> BlobLocation:
        check_repository_name(repo)
        parse_digest(digest)
        blob = self._meta.linked_blob(registry.id, repo, digest)
        if blob is None:
            raise BlobUnknown(detail={"digest": digest})
        locks.check_blob_read(repo, blob.readable)
        store = self._stores.for_registry(registry.name)
        return BlobLocation(digest, blob.size, store)

    def unlink(self, registry: RegistryRecord, repo: str, digest: str) -> None:
        """Remove the blob from the repository; its bytes stay until garbage collection."""
        check_repository_name(repo)
        parse_digest(digest)
        with self._meta.transaction() as tx:
            found = AttributeWrites(tx).repository_locks(registry.id, repo)
            if found is None:
                raise BlobUnknown(detail={"digest": digest})
            locks.check_blob_delete(repo, found.locks)
            if not tx.unlink_blob(found.id, digest):
                raise BlobUnknown(detail={"digest": digest})
            deleted = events.BlobDeleted(registry_id=registry.id, repository=repo, digest=digest)
            tx.emit(*deleted.to_row())

    def mount(self, registry: RegistryRecord, repo: str, digest: str, source: str) -> bool:
        """Link a blob another repository of the same registry holds; False when the
        source does not have it, or may not be read (a read lock): the caller then starts
        an ordinary upload. A write-locked destination refuses."""
        check_repository_name(repo)
        parse_digest(digest)
        found = self._attributes.repository_locks(registry.id, repo)
        if found is not None:
            locks.check_push(repo, found.locks)
        try:
            check_repository_name(source)
        except NameInvalid:
            return False
        blob = self._meta.linked_blob(registry.id, source, digest)
        if blob is None or not blob.readable:
            return False
        with self._meta.transaction() as tx:
            # Checked again under the writers' lock: garbage collection may have removed
            # the source's link, and with the last link the blob's bytes, since the read.
            source_id = tx.repository_id(registry.id, source)
            if source_id is None or not tx.linked_blob_sizes(source_id, [digest]):
                return False
            tx.link_blob(tx.ensure_repository(registry.id, repo), digest)
        return True

    def link_stored(
        self, registry: RegistryRecord, repo: str, digest: str, replicated: bool = False
    ) -> bool:
        """Link a blob the registry stores already (another repository has it): no byte
        moves. False when the registry does not have it. A write-locked destination
        refuses, unless the link is a peer region's (`replicated`: see
        `manifests.Replicated`). The row and the bytes are both checked under the
        writers' lock, under which garbage collection removes rows and bytes together: a
        collection that died between deleting the bytes and committing leaves a row
        without bytes, which must not become visible again (the caller then copies the
        blob)."""
        check_repository_name(repo)
        parse_digest(digest)
        found = self._attributes.repository_locks(registry.id, repo)
        if found is not None and not replicated:
            locks.check_push(repo, found.locks)
        store = self._stores.for_registry(registry.name)
        with self._meta.transaction() as tx:
            size = tx.blob_size(registry.id, digest)
            if size is None or store.stat(digest) != size:
                return False
            tx.link_blob(tx.ensure_repository(registry.id, repo), digest)
        return True
