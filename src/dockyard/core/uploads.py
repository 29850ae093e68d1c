"""Blob uploads: monolithic, chunked and streamed, resumable across requests and nodes.

The digest is computed while bytes arrive. The running hash of an upload is kept in
process memory (no fast sha256 can save its state elsewhere); a chunk that lands where
that state is missing (another node or worker process, or after a restart) is stored
without hashing, and the upload's data is then read once, at the end, to verify it. That
costs one read of the blob, where recomputing the prefix at every such chunk would read
it again and again (a load balancer alternating the chunks of a large upload).

Publishing is safe against garbage collection running at the same time: the upload's row
names the digest before its bytes are published under it, and the blob's row commits
only after a check, under the writers' lock, that those bytes are still there (collection
removes a blob's bytes under that lock); if they are gone the upload, kept until then,
is published again. An upload session that goes away (expired, cancelled) takes bytes
it published but never committed with it.

A remote store's calls (S3: a network round trip each) run in a thread, so the event loop
serves other requests meanwhile; a local store's are made inline (`_call`, the one place
that decides).

A small blob sent whole in one request with its length (a monolithic `POST ?digest=`, or
a `PUT ?digest=` that finishes an empty upload) is read into memory, verified, and
published with one `put_blob`: on S3 one PUT instead of a part, a copy and their
bookkeeping, a dozen round trips of a millisecond or two of CPU each."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Protocol, TypeVar

from dockyard.common.clock import Clock
from dockyard.common.errors import (
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    QuotaExceeded,
    RangeInvalid,
    SizeInvalid,
)
from dockyard.common.names import check_repository_name
from dockyard.core import locks
from dockyard.core.digests import algorithm_of, parse_digest
from dockyard.metadata.attributes import Attributes
from dockyard.metadata.records import RegistryRecord, UploadRecord
from dockyard.metadata.store import Metadata, Transaction
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores

_READ_CHUNK = 1 << 20
# Bytes gathered before one write to a remote store's writer (one thread hop each).
_REMOTE_BATCH = 1 << 20
# Publications of one upload, each undone by garbage collection, before it gives up.
_PUBLISH_ATTEMPTS = 5
# Blobs up to this size, sent whole with their length, are published from memory.
_SMALL_BLOB = 1 << 20
T = TypeVar("T")


async def _call(store: BlobStore, function: Callable[..., T], *args: object) -> T:
    """Run a store call: in a thread for a remote store, inline for a local one."""
    if store.remote:
        return await asyncio.to_thread(function, *args)
    return function(*args)


@dataclass(frozen=True)
class UploadState:
    id: str
    size: int


class _Hashes:
    """Running sha256 per upload id, valid only at the size it was taken."""

    def __init__(self, limit: int = 4096) -> None:
        self._states: dict[str, tuple[int, hashlib._Hash]] = {}
        self._limit = limit

    def take(self, upload_id: str, size: int) -> hashlib._Hash | None:
        state = self._states.pop(upload_id, None)
        return state[1] if state is not None and state[0] == size else None

    def keep(self, upload_id: str, size: int, hasher: hashlib._Hash) -> None:
        if len(self._states) >= self._limit:
            self._states.pop(next(iter(self._states)))
        self._states[upload_id] = (size, hasher)

    def drop(self, upload_id: str) -> None:
        self._states.pop(upload_id, None)


class StorageLimit(Protocol):
    """What a registry may store (the tiers feature's storage quota, `tiers.quotas`):
    each method refuses by raising a `RegistryError`, which ends the upload and leaves
    nothing behind."""

    def check(self, registry: RegistryRecord, adding: int, digest: str | None = None) -> None:
        """Before any byte is stored: refuse `adding` bytes that would not fit now."""

    def limited(
        self, registry: RegistryRecord, body: AsyncIterator[bytes], held: int
    ) -> AsyncIterator[bytes]:
        """`body`, of unknown length, stopped once it passes the room left."""
        ...

    def check_commit(self, tx: Transaction, registry: RegistryRecord, size: int) -> None:
        """Inside the transaction that has just added a new blob row of `size` bytes:
        the exact check; raising rolls the row back."""


class Uploads:
    def __init__(
        self,
        meta: Metadata,
        stores: BlobStores,
        clock: Clock,
        limit: StorageLimit | None = None,
    ) -> None:
        """`limit`: the storage limit every upload keeps to (None: none)."""
        self._meta = meta
        self._attributes = Attributes(meta)
        self._limit = limit
        self._stores = stores
        self._clock = clock
        self._hashes = _Hashes()

    # -- sessions ---------------------------------------------------------------------

    async def start(
        self, registry: RegistryRecord, repo: str, replicated: bool = False
    ) -> UploadState:
        """`replicated`: a peer region's blob, which no lock here refuses."""
        if not replicated:
            self._check_push(registry, repo)
        upload_id = str(uuid.uuid4())
        async with self._meta.writers_turn():
            with self._meta.transaction() as tx:
                tx.create_upload(upload_id, registry.id, repo)
        self._hashes.keep(upload_id, 0, hashlib.sha256())
        return UploadState(upload_id, 0)

    def status(self, registry: RegistryRecord, repo: str, upload_id: str) -> UploadState:
        record = self._record(registry, repo, upload_id)
        return UploadState(record.id, record.size)

    async def append(
        self,
        registry: RegistryRecord,
        repo: str,
        upload_id: str,
        body: AsyncIterator[bytes],
        start: int | None = None,
        length: int | None = None,
    ) -> UploadState:
        """Append one chunk. `start` (from Content-Range) must equal the current size."""
        record = self._continued(registry, repo, upload_id, start)
        if _sealed(record):
            raise _complete(record)
        store = self._stores.for_registry(registry.name)
        try:
            body = self._within_quota(registry, body, record.size, length)
            hasher = self._running_hash(upload_id, record.size)
            await _start_data(store, upload_id, record.size)
            size = record.size + await _write(store, upload_id, record.size, body, hasher, length)
        except QuotaExceeded as error:
            await _clean_up_after(
                error, "the upload's clean-up", self._discard(registry, store, upload_id, None)
            )
            raise
        with self._meta.transaction() as tx:
            tx.set_upload_size(upload_id, size)
        if hasher is not None:
            self._hashes.keep(upload_id, size, hasher)
        return UploadState(upload_id, size)

    async def finish(
        self,
        registry: RegistryRecord,
        repo: str,
        upload_id: str,
        digest: str,
        body: AsyncIterator[bytes],
        length: int | None = None,
        start: int | None = None,
    ) -> str:
        """Append the final chunk (possibly empty; `start`, from Content-Range, must equal
        the current size), verify the digest and publish. An upload whose publication
        failed (the store went down) is published again by the same final request, sent
        again without its last chunk: its status says it holds every byte already."""
        parse_digest(digest)
        record = self._continued(registry, repo, upload_id, start)
        store = self._stores.for_registry(registry.name)
        if _sealed(record):
            await self._publish_again(registry, repo, store, record, digest, body)
            return digest
        data = None
        try:
            if record.size == 0 and _is_small(length):
                # Only the commit's exact quota check: a small blob is refused after it
                # arrived rather than before, for one read fewer per blob.
                data = await _read_whole(body, length)
                _check_digest(digest, data)
                size = len(data)
            else:
                body = self._within_quota(registry, body, record.size, length, digest)
                hasher = self._running_hash(upload_id, record.size)
                await _start_data(store, upload_id, record.size)
                written = await _write(store, upload_id, record.size, body, hasher, length)
                size = record.size + written
                await self._verify(store, upload_id, digest, hasher)
            async with self._meta.writers_turn():
                with self._meta.transaction() as tx:
                    if not tx.set_upload_digest(upload_id, digest):
                        raise BlobUploadUnknown(detail={"uuid": upload_id})
                    if data is None:
                        # Verified and sealed in the store: what a retry finds (`_sealed`).
                        tx.set_upload_size(upload_id, size)
            await self._publish(registry, repo, store, upload_id, digest, size, data)
        except QuotaExceeded as error:
            await _clean_up_after(
                error, "the upload's clean-up", self._discard(registry, store, upload_id, digest)
            )
            raise
        self._hashes.drop(upload_id)
        return digest

    async def upload_whole(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        body: AsyncIterator[bytes],
        length: int | None = None,
        replicated: bool = False,
    ) -> str:
        """A monolithic upload (`POST ?digest=`): its session row, which names the digest
        from the start, lives only while the request does. `replicated`: a peer region's
        blob, which no lock here refuses (see `manifests.Replicated`)."""
        if not replicated:
            self._check_push(registry, repo)
        parse_digest(digest)
        store = self._stores.for_registry(registry.name)
        upload_id = str(uuid.uuid4())
        small = _is_small(length)
        if not small:
            body = self._within_quota(registry, body, 0, length, digest)
            await _call(store, store.start_upload, upload_id)
        async with self._meta.writers_turn():
            with self._meta.transaction() as tx:
                tx.create_upload(upload_id, registry.id, repo, digest)
        try:
            if small:
                data = await _read_whole(body, length)
                _check_digest(digest, data)
                await self._publish(registry, repo, store, upload_id, digest, len(data), data)
            else:
                hasher = hashlib.sha256()
                size = await _write(store, upload_id, 0, body, hasher, length)
                await self._verify(store, upload_id, digest, hasher)
                await self._publish(registry, repo, store, upload_id, digest, size)
        except BaseException as error:
            await _clean_up_after(
                error, "the upload's clean-up", self._discard(registry, store, upload_id, digest)
            )
            raise
        return digest

    async def put_small_blobs(
        self, registry: RegistryRecord, blobs: Sequence[tuple[str, str, bytes]]
    ) -> None:
        """Small blobs (repository, digest, bytes) a peer region sent together
        (geo-replication's bundles; no lock here refuses them, see
        `manifests.Replicated`), each verified against its digest: linked where the
        registry stores it already, else published, with the same guard against garbage
        collection as `upload_whole` (an upload row names each digest before its bytes
        are published, the blob's row commits after a check that they are there) but in
        one write transaction before and one after for all of them, not three each. A
        blob whose bytes went meanwhile is published again alone (`upload_whole`)."""
        for repo, digest, data in blobs:
            check_repository_name(repo)
            _check_digest(digest, data)
        store = self._stores.for_registry(registry.name)

        def link_or_claim() -> list[tuple[str, str, str, bytes]]:
            """Link what is stored; an upload row for the rest: (id, repo, digest, bytes)."""
            claimed = []
            with self._meta.transaction() as tx:
                for repo, digest, data in blobs:
                    size = tx.blob_size(registry.id, digest)
                    if size is not None and store.stat(digest) == size:
                        tx.link_blob(tx.ensure_repository(registry.id, repo), digest)
                    else:
                        upload_id = str(uuid.uuid4())
                        tx.create_upload(upload_id, registry.id, repo, digest)
                        claimed.append((upload_id, repo, digest, data))
            return claimed

        def commit() -> list[tuple[str, str, str, bytes]]:
            """Commit the published blobs; those whose bytes went meanwhile."""
            added, gone = 0, []
            with self._meta.transaction() as tx:
                for blob in new:
                    committed = _committed(tx, registry, store, *blob)
                    if committed is None:
                        gone.append(blob)
                    else:
                        added += committed
                if added and self._limit is not None:
                    self._limit.check_commit(tx, registry, added)
            return gone

        new = await self._in_turn(store, link_or_claim)
        if not new:
            return
        try:
            for upload_id, _, digest, data in new:
                stored = await asyncio.to_thread(store.put_blob, upload_id, digest, data)
                if stored != len(data):
                    raise BlobUploadInvalid(f"stored {stored} bytes, received {len(data)}")
            gone = await self._in_turn(store, commit)
        except BaseException as error:
            for upload_id, _, digest, _ in new:
                discard = self._discard(registry, store, upload_id, digest)
                await _clean_up_after(error, "the upload's clean-up", discard)
            raise
        gone_ids = {upload_id for upload_id, *_ in gone}
        for upload_id, _, digest, _ in new:
            if upload_id in gone_ids:
                await self._discard(registry, store, upload_id, digest)
            else:
                await _call(store, store.abort_upload, upload_id)
        for _, repo, digest, data in gone:
            await self.upload_whole(registry, repo, digest, _once(data), len(data), True)

    async def _in_turn(self, store: BlobStore, work: Callable[[], T]) -> T:
        """A write transaction that asks `store` about bytes: in a thread for a remote
        store (its calls are network round trips), else in the writers' turn."""
        if store.remote:
            return await asyncio.to_thread(work)
        async with self._meta.writers_turn():
            return work()

    async def cancel(self, registry: RegistryRecord, repo: str, upload_id: str) -> None:
        record = self._record(registry, repo, upload_id)
        store = self._stores.for_registry(registry.name)
        await self._discard(registry, store, upload_id, record.digest)

    def expire(self, idle: timedelta) -> int:
        """Forget uploads idle for longer than `idle` and delete their partial data (and
        bytes one published but never committed: its process died half-way), and
        partial data that no session owns (left by a crash mid-request), and, in stores
        that have them (S3), multipart uploads older than `idle` (a commit that died).
        Returns how many sessions and ownerless uploads went."""
        cutoff = self._clock() - idle
        expired = self._meta.uploads_idle_since(cutoff)
        names = {record.id: record.name for record in self._meta.registries()}
        for upload in expired:
            store = self._stores.for_registry(names[upload.registry_id])
            self._forget(upload.registry_id, store, upload.id, upload.digest)
            store.abort_upload(upload.id)
            self._hashes.drop(upload.id)
        live = self._meta.upload_ids()
        removed = len(expired)
        for store in self._stores.all():
            for upload_id, mtime in list(store.upload_ids()):
                if upload_id not in live and mtime < cutoff.timestamp():
                    store.abort_upload(upload_id)
                    removed += 1
            abort_multipart = getattr(store, "abort_multipart_before", None)
            if abort_multipart is not None:
                removed += abort_multipart(cutoff.timestamp())
        return removed

    # -- internals ----------------------------------------------------------------------

    def _check_push(self, registry: RegistryRecord, repo: str) -> None:
        """Refuse to start an upload into a write-locked repository. An upload already
        running when the lock is set may finish: no manifest can use it."""
        check_repository_name(repo)
        found = self._attributes.repository_locks(registry.id, repo)
        if found is not None:
            locks.check_push(repo, found.locks)

    def _within_quota(
        self,
        registry: RegistryRecord,
        body: AsyncIterator[bytes],
        held: int,
        length: int | None,
        digest: str | None = None,
    ) -> AsyncIterator[bytes]:
        """Refuse now a request whose length would take the registry past its storage
        quota (the upload holds `held` bytes); a body of unknown length is stopped once
        it crosses the room left. The commit checks again exactly (`_commit_blob`)."""
        if self._limit is None:
            return body
        if length is None:
            return self._limit.limited(registry, body, held)
        self._limit.check(registry, held + length, digest)
        return body

    async def _discard(
        self, registry: RegistryRecord, store: BlobStore, upload_id: str, digest: str | None
    ) -> None:
        """End an upload session and delete what it stored (see `_forget`): nothing of a
        cancelled or refused upload stays."""
        await _call(store, self._forget, registry.id, store, upload_id, digest)
        await _call(store, store.abort_upload, upload_id)
        self._hashes.drop(upload_id)

    async def _publish_again(
        self,
        registry: RegistryRecord,
        repo: str,
        store: BlobStore,
        record: UploadRecord,
        digest: str,
        body: AsyncIterator[bytes],
    ) -> None:
        """Finish an upload that was verified as `record.digest` and sealed, but not
        published: a request carrying that digest and no bytes publishes it, and so does
        one that sends the whole blob again (a client retrying a monolithic PUT)."""
        if digest != record.digest:
            raise DigestInvalid(
                f"upload has digest {record.digest}, not {digest}", detail={"digest": digest}
            )
        hasher, received = hashlib.new(algorithm_of(digest)), 0
        async for chunk in body:
            hasher.update(chunk)
            received += len(chunk)
        whole = received == record.size and f"{hasher.name}:{hasher.hexdigest()}" == digest
        if received and not whole:
            raise _complete(record)
        await self._publish(registry, repo, store, record.id, digest, record.size)
        self._hashes.drop(record.id)

    def _record(self, registry: RegistryRecord, repo: str, upload_id: str) -> UploadRecord:
        check_repository_name(repo)
        record = self._meta.upload(upload_id)
        if record is None or record.registry_id != registry.id or record.repository != repo:
            raise BlobUploadUnknown(detail={"uuid": upload_id})
        return record

    def _continued(
        self, registry: RegistryRecord, repo: str, upload_id: str, start: int | None
    ) -> UploadRecord:
        """The upload a chunk continues; `RangeInvalid` (the spec's 416, with the upload's
        range) if the chunk does not start where the upload ends."""
        record = self._record(registry, repo, upload_id)
        if start is not None and start != record.size:
            raise RangeInvalid(
                f"chunk starts at {start}, but the upload has {record.size} bytes",
                detail={"size": record.size},
            )
        return record

    def _running_hash(self, upload_id: str, size: int) -> hashlib._Hash | None:
        """The sha256 of the upload's first `size` bytes, if this process has it (an
        empty upload's is new); None if it is elsewhere: the upload is then verified by
        reading it at the end."""
        hasher = self._hashes.take(upload_id, size)
        if hasher is None and size == 0:
            hasher = hashlib.sha256()
        return hasher

    async def _verify(
        self, store: BlobStore, upload_id: str, digest: str, hasher: hashlib._Hash | None
    ) -> None:
        """Compare the upload with `digest`: with the running sha256 when there is one,
        else (another algorithm, or chunks that arrived elsewhere) by reading it once."""
        algorithm = algorithm_of(digest)
        if algorithm != "sha256" or hasher is None:
            hasher = hashlib.new(algorithm)
            await _call(store, _hash_upload, store, upload_id, hasher)
        _compare(digest, f"{algorithm}:{hasher.hexdigest()}")

    def _forget(
        self, registry_id: int, store: BlobStore, upload_id: str, digest: str | None
    ) -> bool:
        """Delete an upload's row, and the bytes it published under `digest` unless a
        blob row claims them (checked under the writers' lock, as every commit of a blob
        row checks its bytes). False if the row was gone already."""
        with self._meta.transaction() as tx:
            found = tx.delete_upload(upload_id)
            if digest is not None and tx.blob_size(registry_id, digest) is None:
                store.delete(digest)
        return found

    async def _publish(
        self,
        registry: RegistryRecord,
        repo: str,
        store: BlobStore,
        upload_id: str,
        digest: str,
        size: int,
        data: bytes | None = None,
    ) -> None:
        """Publish the verified upload under `digest` (its row names the digest already)
        and commit the blob's row; then drop the upload's data, kept until now so that it
        can be published again if garbage collection removed the bytes meanwhile. With
        `data` (a small blob held in memory) the bytes are published from it instead."""
        for _ in range(_PUBLISH_ATTEMPTS):
            # fsync and link off the event loop: other requests go on while the disk works.
            try:
                if data is None:
                    stored = await asyncio.to_thread(store.commit_upload, upload_id, digest)
                else:
                    stored = await asyncio.to_thread(store.put_blob, upload_id, digest, data)
            except KeyError:
                raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
            if stored != size:
                raise BlobUploadInvalid(f"stored {stored} bytes, received {size}")
            commit = partial(self._commit_blob, registry, repo, store, upload_id, digest, size)
            if store.remote:  # a remote store's calls are network round trips: in a thread
                committed = await asyncio.to_thread(commit)
            else:
                async with self._meta.writers_turn():
                    committed = commit()
            if committed:
                break
        else:
            raise BlobUploadInvalid(f"{digest} was removed while being published, every time")
        await _call(store, store.abort_upload, upload_id)

    def _commit_blob(
        self,
        registry: RegistryRecord,
        repo: str,
        store: BlobStore,
        upload_id: str,
        digest: str,
        size: int,
    ) -> bool:
        """Commit the blob's row and link, and end the session; False, committing
        nothing, if the published bytes are gone (garbage collection found the digest
        unclaimed and removed them: publish again). The check holds the writers' lock,
        as collection's removal does, so the bytes cannot go between check and commit."""
        with self._meta.transaction() as tx:
            if store.stat(digest) is None:
                return False
            if not tx.delete_upload(upload_id):
                # Cancelled or expired meanwhile: nothing claims what was published.
                if tx.blob_size(registry.id, digest) is None:
                    store.delete(digest)
                raise BlobUploadUnknown(detail={"uuid": upload_id})
            if tx.add_blob(registry.id, digest, size) and self._limit is not None:
                # A new blob: the exact quota check, under the writers' lock (a refusal
                # rolls back; the caller then discards the upload and the bytes).
                self._limit.check_commit(tx, registry, size)
            tx.link_blob(tx.ensure_repository(registry.id, repo), digest)
        return True


def _committed(
    tx: Transaction,
    registry: RegistryRecord,
    store: BlobStore,
    upload_id: str,
    repo: str,
    digest: str,
    data: bytes,
) -> int | None:
    """`Uploads._commit_blob` for a blob of `put_small_blobs`, in their one transaction:
    the bytes it adds to the registry's storage (0: it had the blob), None if its bytes
    or its upload row are gone (published again after)."""
    if store.stat(digest) is None or not tx.delete_upload(upload_id):
        return None
    added = tx.add_blob(registry.id, digest, len(data))
    tx.link_blob(tx.ensure_repository(registry.id, repo), digest)
    return len(data) if added else 0


async def _once(data: bytes) -> AsyncIterator[bytes]:
    """`data` as a request's body."""
    yield data


async def _clean_up_after(error: BaseException, what: str, clean_up: Awaitable[None]) -> None:
    """Await `clean_up` after `error`: a clean-up that fails as well (the store or the
    database still down) must not replace the first error, the one the client is to see;
    it becomes a note on it (the upload sweeper removes what stayed)."""
    try:
        await clean_up
    except Exception as failed:
        error.add_note(f"and {what} failed: {failed!r}")


def _sealed(record: UploadRecord) -> bool:
    """Whether the upload was verified and sealed by a final request whose publication
    failed: its row names the digest and holds its size (a small blob sent whole keeps
    size 0 and is sent whole again)."""
    return record.digest is not None and record.size > 0


def _complete(record: UploadRecord) -> RangeInvalid:
    return RangeInvalid(
        f"the upload holds all {record.size} bytes of {record.digest}: finish it with a PUT "
        "of that digest and no body",
        detail={"size": record.size},
    )


async def _start_data(store: BlobStore, upload_id: str, size: int) -> None:
    """Give an upload its data with its first bytes, not at `start`: most small blobs
    arrive whole with the final PUT and never need any (on a local disk the file
    creation would wait, on the event loop, for every fsync of the journal)."""
    if size == 0:
        await _call(store, store.start_upload, upload_id)


def _is_small(length: int | None) -> bool:
    return length is not None and length <= _SMALL_BLOB


async def _read_whole(body: AsyncIterator[bytes], length: int | None) -> bytes:
    """The whole body of a small blob, which must be `length` bytes."""
    data = bytearray()
    async for chunk in body:
        data += chunk
    if length is not None and len(data) != length:
        raise SizeInvalid(f"received {len(data)} bytes, expected {length}")
    return bytes(data)


def _check_digest(digest: str, data: bytes) -> None:
    algorithm = algorithm_of(digest)
    _compare(digest, f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}")


def _compare(digest: str, actual: str) -> None:
    if actual != digest:
        raise DigestInvalid(f"upload has digest {actual}, not {digest}", detail={"digest": digest})


async def _write(
    store: BlobStore,
    upload_id: str,
    at: int,
    body: AsyncIterator[bytes],
    hasher: hashlib._Hash | None,
    length: int | None,
) -> int:
    """Stream `body` to the end of the upload at offset `at`, hashing as it goes (unless
    the running hash is elsewhere: `hasher` None). A body that fails or falls short
    abandons the writer: the upload's recorded size does not move, and the retry
    continues there."""
    written = 0
    try:
        writer = await _call(store, store.append_upload, upload_id, at)
    except KeyError:
        raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
    try:
        if store.remote:
            # A write may put a whole part: gather chunks and hand them over in batches.
            batch = bytearray()
            async for chunk in body:
                batch += chunk
                if hasher is not None:
                    hasher.update(chunk)
                written += len(chunk)
                if len(batch) >= _REMOTE_BATCH:
                    await asyncio.to_thread(writer.write, bytes(batch))
                    batch.clear()
            if batch:
                await asyncio.to_thread(writer.write, bytes(batch))
        else:
            async for chunk in body:
                if chunk:
                    writer.write(chunk)
                    if hasher is not None:
                        hasher.update(chunk)
                    written += len(chunk)
        if length is not None and written != length:
            raise SizeInvalid(f"received {written} bytes, expected {length}")
    except BaseException as error:
        await _clean_up_after(error, "abandoning the upload's writer", _call(store, writer.abandon))
        raise
    await _call(store, writer.close)
    return written


def _hash_upload(store: BlobStore, upload_id: str, hasher: hashlib._Hash) -> None:
    """Feed the upload's data, as stored, to `hasher`."""
    try:
        source = store.read_upload(upload_id)
    except KeyError:
        raise BlobUploadUnknown(detail={"uuid": upload_id}) from None
    with source:
        while chunk := source.read(_READ_CHUNK):
            hasher.update(chunk)
