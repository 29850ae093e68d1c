"""The replication engine: one outbox consumer per peer region
(`backlog.consumer_name`) sends each change of a registry replicated there, over HTTP
with the peer credential (`peers`), and records in the replication's status whether
that region took it. Each region has its queue: a region that is down holds back its
own deliveries, never another region's.

Per change: a manifest (pushed, or named by a tag) goes after everything it references
(its child manifests first, then its blobs: a small one carried along, a larger one
linked if the region stores it already, else its bytes streamed, verified there by
digest); a tag's move or delete goes with its stamp (`stamps`: the time of the
transaction that made it, and this region's name); a manifest's delete with the same,
and whether it went to the recycle bin (soft delete); a restore as the push it is,
saying its tag came out of the bin; a change of locks or of a manifest's quarantine
state with its stamp, each applied there by the same rule. Pushes gather in a bundle
(`bundles`: an image's small blobs, manifest and tag write, and the next images', one
request), sent before any other change of the registry and at the end of a batch.
Events this region applied for a peer (their caller is `replication:<region>`) are not
sent on: every region sends its own changes to all the others. The consumer is ordered
per repository, a repository's waiting changes claimed together, so a repository's
changes reach a region in the order they were made; a change a region refuses or
cannot take is retried by the outbox (doubling backoff) and holds back that
repository's later changes."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

import httpx

from dockyard.core.events import (
    Envelope,
    Event,
    LocksChanged,
    ManifestDeleted,
    ManifestPushed,
    QuarantineChanged,
    RepositoryDeleted,
    TagMoved,
    Untagged,
)
from dockyard.core.manifest_formats import parse_manifest
from dockyard.core.registries import Registries, RegistryRecord
from dockyard.metadata.quarantine import state_of
from dockyard.metadata.replication import (
    ReplicationRecord,
    ReplicationWrites,
    in_recycle_bin,
    manifest_digests,
    replications,
    repository_names,
    tag_names,
    tag_row,
)
from dockyard.metadata.store import Metadata
from dockyard.replication.applier import PEER_CALLER, attribute_values, current_stamp
from dockyard.replication.bundles import MEDIA_TYPE, BlobChange, Bundle, ManifestChange
from dockyard.replication.peers import PeerClient, PeerUnreachable
from dockyard.replication.regions import Peer, Regions, region_key
from dockyard.replication.replications import FAILED, READY
from dockyard.replication.stamps import Stamp
from dockyard.storage.stores import BlobStores

CHUNK = 1 << 20
# A blob's bytes go in parts of this size; a broken transfer resumes at one. Each part is
# a request there with its bookkeeping (the session's row, the quota): a few large
# parts cost the region less than many small ones. A multiple of 8 MiB, the S3 part.
PART = 32 << 20
SEND_OUTRIGHT = 64 << 10  # a blob this small goes in the bundle, without asking first
BUNDLE_BYTES = 4 << 20  # a bundle carrying this many bytes is sent before more are added
LANES = 2  # an image's larger blobs go this many side by side, each on its own connection

log = logging.getLogger(__name__)


def _from(source: BinaryIO, offset: int) -> BinaryIO:
    """`source` from byte `offset` on: sought, or read past where it cannot seek."""
    try:
        source.seek(offset)
    except (OSError, io.UnsupportedOperation):
        left = offset
        while left and (skipped := source.read(min(CHUNK, left))):
            left -= len(skipped)
    return source


def _part(source: BinaryIO, length: int) -> Iterator[bytes]:
    """The next `length` bytes of `source` (left open for the next part)."""
    while length and (chunk := source.read(min(CHUNK, length))):
        length -= len(chunk)
        yield chunk


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    with source:
        while chunk := source.read(CHUNK):
            yield chunk


class Sender:
    def __init__(
        self, meta: Metadata, stores: BlobStores, registries: Registries, regions: Regions
    ) -> None:
        self._meta = meta
        self._stores = stores
        self._registries = registries
        self._regions = regions
        self._clients: dict[str, httpx.Client] = {}  # per peer, kept: connections reused
        self._lanes: dict[str, list[httpx.Client]] = {}  # per peer, for larger blobs
        # The upload session of each blob on its way to a peer, kept while its transfer
        # is unfinished, so the retry continues it (per process: a restart starts over).
        self._sessions: dict[tuple[str, str, str, str], str] = {}

    def handler(self, region: str) -> Callable[[Envelope], None]:
        """The handler of the peer `region`'s consumer (`backlog.consumer_name`)."""
        return lambda envelope: self.handle(envelope, region)

    def handle(self, envelope: Envelope, region: str) -> None:
        """Send one change to the peer `region`, if the registry replicates there; raises
        (and the outbox retries the event, for that region only) if it did not take it."""
        event = envelope.event
        if _applied_for_peer(event):
            return
        targets = self._targets(event.registry_id, region_key(region))
        if not targets:
            return
        registry = next((r for r in self._registries.all() if r.id == event.registry_id), None)
        if registry is None:
            return  # deleted since
        stamp = Stamp.at(envelope.created_at, self._regions.home)
        failures = []
        for record, peer in targets:
            try:
                delivery = self._delivery(peer, registry)
                delivery.send(event, stamp)
                delivery.flush()
            except (httpx.HTTPError, PeerUnreachable) as exc:
                message = _reason(peer, exc)
                failures.append(message)
                self._set_status(registry, record.name, FAILED, message, failed=True)
            else:
                if record.status != READY:  # one write when it changes, not one per change
                    self._set_status(registry, record.name, READY, f"region {peer.name} took it")
        if failures:
            raise PeerUnreachable("; ".join(failures))

    def batch_handler(self, region: str) -> Callable[[Sequence[Envelope]], None]:
        """The peer `region`'s consumer's `handle_batch`."""
        return lambda envelopes: self.handle_batch(envelopes, region)

    def handle_batch(self, envelopes: Sequence[Envelope], region: str) -> None:
        """Send the changes of a batch to the peer `region` (a claim takes each
        repository's due changes together, oldest first): each registry's pushes go in
        bundles (`bundles`; each image's blobs with its manifest and tag, as many images
        as fit), its other changes one request each, in the order they were made. If
        anything fails, this raises and the outbox hands the batch's changes one by one
        to `handle`, which records each one's outcome (a region applies the same change
        twice as once)."""
        wanted = region_key(region)
        registries = {r.id: r for r in self._registries.all()}
        targets: dict[int, list[tuple[ReplicationRecord, Peer]]] = {}
        deliveries: dict[tuple[str, int], _Delivery] = {}
        taken: dict[tuple[int, str], tuple[RegistryRecord, ReplicationRecord, Peer]] = {}
        for envelope in envelopes:
            event = envelope.event
            registry = registries.get(event.registry_id)
            if _applied_for_peer(event) or registry is None:
                continue
            if registry.id not in targets:
                targets[registry.id] = self._targets(registry.id, wanted)
            stamp = Stamp.at(envelope.created_at, self._regions.home)
            for record, peer in targets[registry.id]:
                key = (peer.name, registry.id)
                if key not in deliveries:
                    deliveries[key] = self._delivery(peer, registry)
                deliveries[key].send(event, stamp)
                taken[(registry.id, record.name)] = (registry, record, peer)
        for delivery in deliveries.values():
            delivery.flush()
        for registry, record, peer in taken.values():
            if record.status != READY:
                self._set_status(registry, record.name, READY, f"region {peer.name} took it")

    def _targets(self, registry_id: int, wanted: str) -> list[tuple[ReplicationRecord, Peer]]:
        """The registry's replications in the peer region `wanted` (a region key)."""
        return [
            (record, peer)
            for record in replications(self._meta, registry_id)
            if region_key(record.region) == wanted
            and (peer := self._regions.peer(record.region)) is not None
        ]

    def sync(self, registry: RegistryRecord, name: str) -> None:
        """Send the registry's whole content to a new replication's region: every
        manifest, then every tag with the stamp of its value here (`applier`), then
        every lock and quarantine state whose write is known with its stamp, so a
        replica made of a registry that has images holds them too. Safe to repeat: the
        region applies content once and tag writes by their stamps. The replication's
        status says Ready after, Failed with the reason if the region did not take it."""
        record = next((r for r in replications(self._meta, registry.id) if r.name == name), None)
        peer = None if record is None else self._regions.peer(record.region)
        if record is None or peer is None:
            return
        delivery = self._delivery(peer, registry)
        try:
            for repo in repository_names(self._meta, registry.id):
                for digest in manifest_digests(self._meta, registry.id, repo):
                    delivery.send_manifest(repo, digest)
                for tag in tag_names(self._meta, registry.id, repo):
                    with self._meta.transaction() as tx:
                        stamp = current_stamp(tx, self._regions.home, registry.id, repo, tag)
                        row = tag_row(tx.conn, registry.id, repo, tag)
                    if row is not None:
                        delivery.send_tag(repo, tag, row.digest, stamp)
                with self._meta.transaction() as tx:
                    locks, states = attribute_values(
                        self._meta, tx, self._regions.home, registry.id, repo
                    )
                for lock in locks:
                    delivery.send_locks(
                        repo, lock.tag, lock.digest, {lock.name: lock.value}, lock.stamp
                    )
                for state in states:
                    delivery.send_state(repo, state.digest, state.state, state.details, state.stamp)
            delivery.flush()
        except (httpx.HTTPError, PeerUnreachable) as exc:
            self._set_status(registry, name, FAILED, _reason(peer, exc), failed=True)
            return
        self._set_status(registry, name, READY, f"region {peer.name} holds the registry")

    def _delivery(self, peer: Peer, registry: RegistryRecord) -> _Delivery:
        sessions = _Sessions(self._sessions, peer.name, registry.name)
        if peer.name not in self._lanes:
            self._lanes[peer.name] = [self._connect(peer) for _ in range(LANES)]
        return _Delivery(
            self._client(peer),
            self._meta,
            self._stores,
            registry,
            sessions,
            self._lanes[peer.name],
        )

    def _client(self, peer: Peer) -> httpx.Client:
        if peer.name not in self._clients:
            self._clients[peer.name] = self._connect(peer)
        return self._clients[peer.name]

    def _connect(self, peer: Peer) -> httpx.Client:
        client = PeerClient(self._regions, peer)
        return httpx.Client(
            base_url=client.base_url, headers=client.headers(), timeout=client.timeout
        )

    def _set_status(
        self, registry: RegistryRecord, name: str, status: str, message: str, failed: bool = False
    ) -> None:
        with self._meta.transaction() as tx:
            ReplicationWrites(tx).set_status(registry.id, name, status, message, failed)


def _applied_for_peer(event: Event) -> bool:
    """Whether this region applied the change for a peer (not sent on: every region
    sends its own changes to all the others)."""
    origin = getattr(event, "origin", None)
    return origin is not None and (origin.identity or "").startswith(PEER_CALLER)


def _reason(peer: Peer, exc: Exception) -> str:
    """Why a region did not take a change, without the credential or a body."""
    if isinstance(exc, httpx.HTTPStatusError):
        return (
            f"region {peer.name} refused a change with HTTP {exc.response.status_code}: "
            f"{exc.response.text[:200]}"
        )
    if isinstance(exc, PeerUnreachable):
        return str(exc)
    return f"region {peer.name} did not answer: {type(exc).__name__}"


@dataclass(frozen=True)
class _TagWrite:
    name: str
    stamp: Stamp
    restored: bool  # a restore took the tag out of the recycle bin


@dataclass(frozen=True)
class _Sessions:
    """The upload sessions of blobs on their way to one region, for one registry."""

    kept: dict[tuple[str, str, str, str], str]
    region: str
    registry: str

    def get(self, repo: str, digest: str) -> str | None:
        return self.kept.get((self.region, self.registry, repo, digest))

    def put(self, repo: str, digest: str, upload: str) -> None:
        self.kept[(self.region, self.registry, repo, digest)] = upload

    def drop(self, repo: str, digest: str) -> None:
        self.kept.pop((self.region, self.registry, repo, digest), None)


class _Delivery:
    """Changes on their way to one region, for one registry: pushes gather in a bundle
    (`bundles`) that `flush` sends, and that any other change sends first, so the region
    applies them in the order they were made."""

    def __init__(
        self,
        http: httpx.Client,
        meta: Metadata,
        stores: BlobStores,
        registry: RegistryRecord,
        sessions: _Sessions,
        lanes: Sequence[httpx.Client] = (),
    ) -> None:
        self._http = http
        # Each a connection of its own, so a blob's parts all reach the same server
        # process there, which hashes them as they arrive (`core.uploads`).
        self._lanes = lanes
        self._sessions = sessions
        self._meta = meta
        self._store = stores.for_registry(registry.name)
        self._registry = registry
        self._base = f"/registries/{registry.name}"
        self._bundle = Bundle()

    def flush(self) -> None:
        """Send the bundle gathered so far, if any."""
        if not self._bundle:
            return
        bundle, self._bundle = self._bundle, Bundle()
        self._http.post(
            f"{self._base}/changes",
            content=b"".join(bundle.encode()),
            headers={"Content-Type": MEDIA_TYPE},
        ).raise_for_status()

    def send(self, event: Event, stamp: Stamp) -> None:
        repo = event.repository
        if isinstance(event, TagMoved):
            self.send_manifest(repo, event.digest, _TagWrite(event.tag, stamp, event.restored))
        elif isinstance(event, ManifestPushed):
            self.send_manifest(repo, event.digest)
        elif isinstance(event, Untagged):
            self.send_tag(
                repo, event.tag, None, stamp, soft=self._binned(repo, event.digest, event.tag)
            )
        elif isinstance(event, ManifestDeleted):
            self._delete(repo, event.digest, event.tags, stamp)
        elif isinstance(event, RepositoryDeleted):
            # Each tag's copy in the bin names the digest it had: look it up by name.
            for tag in event.tags:
                soft = any(self._binned(repo, m.digest, tag) for m in event.manifests)
                self.send_tag(repo, tag, None, stamp, soft=soft)
            for manifest in event.manifests:
                self._delete(repo, manifest.digest, (), stamp)
            self.flush()
            self._http.post(
                f"{self._base}/repositories/delete", json={"repository": repo}
            ).raise_for_status()
        elif isinstance(event, LocksChanged):
            self.send_locks(repo, event.tag, event.digest, event.changes, stamp)
        elif isinstance(event, QuarantineChanged):
            self._quarantine(event, stamp)

    def _check(self, answer: httpx.Response) -> httpx.Response:
        if answer.status_code >= 400 and answer.status_code != 404:
            answer.raise_for_status()
        return answer

    def send_manifest(self, repo: str, digest: str, tag: _TagWrite | None = None) -> bool:
        """Put the manifest in the bundle after what it references, with the write of
        `tag` naming it (one change there, as here: one push event, so one `push`
        webhook); False if it is gone here (its delete, a later change, will follow)."""
        if tag is None and self._bundle.holds(repo, digest):
            return True
        record = self._meta.manifest_by_digest(self._registry.id, repo, digest)
        if record is None:
            return False
        manifest = parse_manifest(record.body, record.media_type)
        for child in manifest.children:
            self.send_manifest(repo, child.digest)
        self._blobs(repo, [b.digest for b in manifest.blobs if not self._bundled(repo, b.digest)])
        change = ManifestChange(repo, digest, record.media_type, record.body)
        if tag is not None:
            change = ManifestChange(
                repo, digest, record.media_type, record.body, tag.name, tag.stamp, tag.restored
            )
        self._bundle.add(change)
        if self._bundle.size >= BUNDLE_BYTES:
            self.flush()
        return True

    def _bundled(self, repo: str, digest: str) -> bool:
        """Put a blob of at most `SEND_OUTRIGHT` bytes (a config, a small layer) in the
        bundle, without asking whether the region has it: its bytes cost the region no
        more than the question would. False for a larger one (`_blob`)."""
        if self._bundle.holds(repo, digest):
            return True
        size = self._store.stat(digest)
        if size is None or size > SEND_OUTRIGHT:
            return False
        with self._store.open(digest) as source:
            self._bundle.add(BlobChange(repo, digest, source.read()))
        return True

    def _blobs(self, repo: str, digests: Sequence[str]) -> None:
        """Larger blobs, side by side on the lanes (each lane's one after the other), so
        that the region's receiving and this region's reading overlap."""
        digests = list(dict.fromkeys(digests))
        lanes = min(len(self._lanes), len(digests))
        if lanes < 2:
            for digest in digests:
                self._blob(repo, digest)
            return

        def lane(n: int) -> None:
            for digest in digests[n::lanes]:
                self._blob(repo, digest, self._lanes[n])

        with ThreadPoolExecutor(lanes, thread_name_prefix="replication-lane") as pool:
            for sent in [pool.submit(lane, n) for n in range(lanes)]:
                sent.result()

    def _blob(self, repo: str, digest: str, http: httpx.Client | None = None) -> None:
        """Linked if the region stores it, else its bytes (verified there): a small one
        in one request, a larger one in an upload session there, which a retry
        continues from the bytes the region holds, so a transfer broken off is never
        sent again whole."""
        http = http or self._http
        params = {"repository": repo}
        linked = http.post(f"{self._base}/blobs/{digest}/link", params=params)
        if self._check(linked).status_code == 200:
            return
        size = self._store.stat(digest)
        if size is not None and size > CHUNK:
            self._blob_in_parts(http, repo, digest, size)
            return
        answer = http.put(
            f"{self._base}/blobs/{digest}",
            params=params,
            content=_chunks(self._store.open(digest)),
            headers={"Content-Length": str(size)} if size is not None else None,
        )
        answer.raise_for_status()

    def _blob_in_parts(self, http: httpx.Client, repo: str, digest: str, size: int) -> None:
        params = {"repository": repo}
        upload, offset = self._sessions.get(repo, digest), 0
        if upload is not None:
            held = self._check(http.get(f"{self._base}/uploads/{upload}", params=params))
            if held.status_code == 200:
                offset = held.json()["offset"]
            else:
                upload = None  # expired there: start again
        if upload is None:
            started = http.post(f"{self._base}/uploads", params=params)
            started.raise_for_status()
            upload = started.json()["upload"]
            self._sessions.put(repo, digest, upload)
        if offset < size:
            with _from(self._store.open(digest), offset) as source:
                while offset < size:  # each part that arrives is kept there
                    part = min(PART, size - offset)
                    answer = http.patch(
                        f"{self._base}/uploads/{upload}",
                        params={**params, "offset": str(offset)},
                        content=_part(source, part),
                        headers={"Content-Length": str(part)},
                    )
                    answer.raise_for_status()
                    offset += part
                    if answer.json()["offset"] != offset:
                        raise PeerUnreachable(
                            f"region {self._sessions.region} holds "
                            f"{answer.json()['offset']} bytes of {digest}, not {offset}"
                        )
        finished = http.put(f"{self._base}/uploads/{upload}", params={**params, "digest": digest})
        if finished.status_code < 500:  # done, or refused: a retry starts a new session
            self._sessions.drop(repo, digest)
        finished.raise_for_status()

    def send_tag(
        self,
        repo: str,
        tag: str,
        digest: str | None,
        stamp: Stamp,
        soft: bool = False,
        restored: bool = False,
    ) -> None:
        self.flush()
        body = {"repository": repo, "tag": tag, "digest": digest, "stamp": stamp.as_json()}
        if soft:
            body["soft"] = True
        if restored:
            body["restored"] = True
        self._http.post(f"{self._base}/tags", json=body).raise_for_status()

    def _delete(self, repo: str, digest: str, tags: tuple[str, ...], stamp: Stamp) -> None:
        self.flush()
        body = {"repository": repo, "digest": digest, "tags": list(tags), "stamp": stamp.as_json()}
        if self._binned(repo, digest):
            body["soft"] = True
        self._http.post(f"{self._base}/deletes", json=body).raise_for_status()

    def _binned(self, repo: str, digest: str, tag: str | None = None) -> bool:
        """Whether the delete put it in this region's recycle bin (still there: one
        restored since is sent as the push that restored it)."""
        return in_recycle_bin(self._meta, self._registry.id, repo, digest, tag)

    def send_locks(
        self,
        repo: str,
        tag: str | None,
        digest: str | None,
        changes: Mapping[str, bool],
        stamp: Stamp,
    ) -> None:
        self.flush()
        body = {
            "repository": repo,
            "tag": tag,
            "digest": digest,
            "changes": dict(changes),
            "stamp": stamp.as_json(),
        }
        self._http.post(f"{self._base}/locks", json=body).raise_for_status()

    def send_state(
        self, repo: str, digest: str, state: str, details: str | None, stamp: Stamp
    ) -> None:
        self.flush()
        body = {
            "repository": repo,
            "digest": digest,
            "state": state,
            "details": details,
            "stamp": stamp.as_json(),
        }
        self._http.post(f"{self._base}/quarantine", json=body).raise_for_status()

    def _quarantine(self, event: QuarantineChanged, stamp: Stamp) -> None:
        """The state the event set, with the details stored with it (if still that state
        here: a later change is an event of its own)."""
        stored = state_of(self._meta, self._registry.id, event.repository, event.digest)
        details = stored.details if stored is not None and stored.state == event.state else None
        if event.state is None:
            return
        self.send_state(event.repository, event.digest, event.state, details, stamp)
