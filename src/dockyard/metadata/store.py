"""`Metadata`: the registry's content queries (registries, repositories, manifests, tags,
blobs, uploads), as methods with plain arguments, and `Transaction`, the one write
transaction every change runs in.

Reads run outside transactions (one statement each on hot paths, the hottest through
the read cache, `read_cache.py`); writes run in one `transaction()` whose `Transaction`
also writes the outbox event of the change. Connections are `connections.py`'s."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from dockyard.metadata import schema as t
from dockyard.metadata.connections import Connections
from dockyard.metadata.engine import make_engine, write_transaction, writers_queue
from dockyard.metadata.notifications import announce
from dockyard.metadata.prepared import Prepared
from dockyard.metadata.read_cache import KeptRead, ReadCache
from dockyard.metadata.records import (
    LinkedBlob,
    ManifestContent,
    ManifestRecord,
    ReadFlags,
    ReferrerRecord,
    RegistryRecord,
    UploadRecord,
)

Clock = Callable[[], datetime]

_m, _r, _g, _l, _b = t.manifests, t.repositories, t.tags, t.blob_links, t.blobs
_IN_REPO = and_(_r.c.registry_id == bindparam("registry_id"), _r.c.name == bindparam("repo"))

# Hot reads, built once: each is a single indexed statement. Manifest reads also fetch
# every readEnabled flag on the way (repository, tag, manifest), so a pull with its lock
# check is still one query or a cache hit.
_MANIFEST_BY_TAG = (
    select(
        _m.c.digest,
        _m.c.media_type,
        _m.c.size,
        _m.c.body,
        _r.c.read_enabled,
        _g.c.read_enabled,
        _m.c.read_enabled,
    )
    .select_from(
        _r.join(_g, _g.c.repository_id == _r.c.id).join(
            _m, and_(_m.c.repository_id == _r.c.id, _m.c.digest == _g.c.digest)
        )
    )
    .where(_IN_REPO, _g.c.name == bindparam("tag"))
)
_MANIFEST_BY_DIGEST = (
    select(
        _m.c.digest,
        _m.c.media_type,
        _m.c.size,
        _m.c.body,
        _r.c.read_enabled,
        literal(True),
        _m.c.read_enabled,
    )
    .select_from(_r.join(_m, _m.c.repository_id == _r.c.id))
    .where(_IN_REPO, _m.c.digest == bindparam("digest"))
)
_LINKED_BLOB = Prepared(
    select(_b.c.size, _r.c.read_enabled)
    .select_from(
        _r.join(_l, _l.c.repository_id == _r.c.id).join(
            _b, and_(_b.c.registry_id == _r.c.registry_id, _b.c.digest == _l.c.digest)
        )
    )
    .where(_IN_REPO, _l.c.digest == bindparam("digest"))
)
_REPOSITORY_ID = Prepared(select(_r.c.id).where(_IN_REPO))
_TAGS_PAGE = (
    select(_g.c.name)
    .select_from(_r.join(_g, _g.c.repository_id == _r.c.id))
    .where(_IN_REPO, _g.c.name > bindparam("last"), _g.c.list_enabled)
    .order_by(_g.c.name)
    .limit(bindparam("n"))
)
# Statements of every blob push, built once (constructing them per call cost more than
# running them: SQLAlchemy coerces each value and computes a cache key each time), and
# run on SQLite straight on the driver (`metadata.prepared`).
_UPLOADS = select(
    t.uploads.c.id,
    t.uploads.c.registry_id,
    t.uploads.c.repository,
    t.uploads.c.size,
    t.uploads.c.created_at,
    t.uploads.c.updated_at,
    t.uploads.c.digest,
)
_UPLOAD_BY_ID = Prepared(_UPLOADS.where(t.uploads.c.id == bindparam("id")))
_INSERT_UPLOAD = Prepared(
    insert(t.uploads),
    keys=("id", "registry_id", "repository", "size", "created_at", "updated_at", "digest"),
)
_SET_UPLOAD_SIZE = Prepared(
    update(t.uploads)
    .where(t.uploads.c.id == bindparam("upload_id"))
    .values(size=bindparam("new_size"), updated_at=bindparam("now"))
)
_SET_UPLOAD_DIGEST = Prepared(
    update(t.uploads)
    .where(t.uploads.c.id == bindparam("upload_id"))
    .values(digest=bindparam("new_digest"), updated_at=bindparam("now"))
)
_DELETE_UPLOAD = Prepared(delete(t.uploads).where(t.uploads.c.id == bindparam("upload_id")))
_BLOB_SIZE = Prepared(
    select(_b.c.size).where(
        _b.c.registry_id == bindparam("registry_id"), _b.c.digest == bindparam("digest")
    )
)
_CHANGE_STORAGE_USED = Prepared(
    update(t.registries)
    .where(t.registries.c.id == bindparam("registry_id"))
    .values(storage_used_bytes=t.registries.c.storage_used_bytes + bindparam("delta"))
)
_DIALECTS = (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
# A blob's row unless the registry has it (a client retrying, or racing another).
_ADD_BLOB = {
    dialect: Prepared(
        module(_b).on_conflict_do_nothing(), keys=("registry_id", "digest", "size", "created_at")
    )
    for dialect, module in _DIALECTS
}


def _relink(module: Callable[[Table], Any]) -> Any:
    """Insert a link, or make an existing one again: its `created_at` moves to now, so
    a blob uploaded or mounted again for a manifest about to arrive gets a full garbage
    collection grace period."""
    statement = module(_l)
    return statement.on_conflict_do_update(
        index_elements=[_l.c.repository_id, _l.c.digest],
        set_={"created_at": statement.excluded.created_at},
    )


_LINK = {
    dialect: Prepared(_relink(module), keys=("repository_id", "digest", "created_at"))
    for dialect, module in _DIALECTS
}


class Metadata:
    """The registry's content queries over this thread's connection (`Connections`) and
    read caches (`ReadCache`). Never `await` inside `transaction()`: the connection
    belongs to the thread, not to the coroutine.

    What the other stores of this package build on is public here: `connection()`,
    `cached()` (with `recall`/`remember`), `kept_read()` and `Transaction.conn`."""

    def __init__(self, url: str, clock: Clock, read_cache: bool = True) -> None:
        self.engine = make_engine(url)
        self.clock = clock
        self._connections = Connections(self.engine)
        self._cache = ReadCache(self._connections, read_cache)
        # Bound once: the hot reads call these without a layer in between.
        self.connection = self._connections.connection
        self.cached = self._cache.cached
        self.recall = self._cache.recall
        self.remember = self._cache.remember
        self.ping = self._connections.ping
        self.close = self._connections.close
        self._emitted: list[Callable[[], None]] = []

    def on_emitted(self, listener: Callable[[], None]) -> None:
        """Call `listener` after each transaction of this process that committed an
        outbox event (from the committing thread): the outbox wakes this process's
        consumers at once, where no database announcement reaches them (SQLite)."""
        self._emitted.append(listener)

    @property
    def keeps_configuration(self) -> bool:
        """Whether configuration reads every request makes (the registry map, network
        policies, tiers) are kept until the configuration changes, checked without a
        round trip (SQLite); else their holders keep them a few seconds, so a request
        that needs nothing else of the database makes no query for them."""
        return self._cache.checks_locally

    def kept_read(
        self,
        key: tuple,
        load: Callable[[Connection], Any],
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> KeptRead:
        """A small configuration read every request makes, kept (see `KeptRead`)."""
        return KeptRead(self._cache, self._connections, key, load, ttl, monotonic)

    def _manifest(self, statement: Any, **params: Any) -> Callable[[Connection], Any]:
        def load(conn: Connection) -> ManifestRecord | None:
            row = conn.execute(statement, params).first()
            if row is None:
                return None
            digest, media_type, size, body, *read = row
            return ManifestRecord(digest, media_type, size, body, ReadFlags(*map(bool, read)))

        return load

    @asynccontextmanager
    async def writers_turn(self) -> AsyncIterator[None]:
        """Wait, without holding up the event loop, for the turn to write (SQLite; a
        no-op elsewhere), then run `transaction()` inside, with no `await` between."""
        queue = writers_queue(self.engine)
        if queue is None:
            yield
            return
        async with queue.turn():
            yield

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Reads made inside it may see its uncommitted writes, and its own commit does
        not change `data_version`: the thread's read cache is emptied when it ends."""
        try:
            with self.connection() as conn, write_transaction(conn):
                tx = Transaction(conn, self.clock())
                yield tx
            if tx.emitted:
                for listener in self._emitted:
                    listener()
        finally:
            self._cache.after_write()

    def _one(self, statement: Prepared, **params: Any) -> tuple[Any, ...] | None:
        with self.connection() as conn:
            return statement.first(conn, **params)

    # -- registries -------------------------------------------------------------------

    def registries(self) -> list[RegistryRecord]:
        with self.connection() as conn:
            rows = conn.execute(
                select(t.registries.c.id, t.registries.c.name, t.registries.c.login_server)
            )
            return [RegistryRecord(*row) for row in rows]

    # -- repositories, manifests, blobs, tags ----------------------------------------

    def repository_exists(self, registry_id: int, repo: str) -> bool:
        return self._one(_REPOSITORY_ID, registry_id=registry_id, repo=repo) is not None

    def manifest_by_tag(self, registry_id: int, repo: str, tag: str) -> ManifestRecord | None:
        return self.cached(
            ("tag", registry_id, repo, tag),
            self._manifest(_MANIFEST_BY_TAG, registry_id=registry_id, repo=repo, tag=tag),
        )

    def manifest_by_digest(self, registry_id: int, repo: str, digest: str) -> ManifestRecord | None:
        return self.cached(
            ("digest", registry_id, repo, digest),
            self._manifest(_MANIFEST_BY_DIGEST, registry_id=registry_id, repo=repo, digest=digest),
        )

    def linked_blob(self, registry_id: int, repo: str, digest: str) -> LinkedBlob | None:
        row = self._one(_LINKED_BLOB, registry_id=registry_id, repo=repo, digest=digest)
        return None if row is None else LinkedBlob(row[0], bool(row[1]))

    def blob_size(self, registry_id: int, digest: str) -> int | None:
        row = self._one(_BLOB_SIZE, registry_id=registry_id, digest=digest)
        return None if row is None else row[0]

    def tags(self, registry_id: int, repo: str, last: str | None, n: int) -> list[str] | None:
        """Listable tags after `last` in lexical order, or None if the repository does not
        exist."""
        params = {"registry_id": registry_id, "repo": repo, "last": last or "", "n": n}

        def load(conn: Connection) -> list[str] | None:
            names = [row[0] for row in conn.execute(_TAGS_PAGE, params)]
            if not names and _REPOSITORY_ID.first(conn, **params) is None:
                return None
            return names

        return self.cached(("tags", registry_id, repo, last, n), load)

    def repositories(self, registry_id: int, last: str | None, n: int) -> list[str]:
        """Listable repositories after `last` in lexical order."""
        query = select(_r.c.name).where(_r.c.registry_id == registry_id, _r.c.list_enabled)
        if last:
            query = query.where(_r.c.name > last)
        with self.connection() as conn:
            return list(conn.execute(query.order_by(_r.c.name).limit(n)).scalars())

    def referrers(
        self, registry_id: int, repo: str, subject: str, artifact_type: str | None
    ) -> list[ReferrerRecord]:
        query = (
            select(_m.c.digest, _m.c.media_type, _m.c.size, _m.c.artifact_type, _m.c.annotations)
            .select_from(_r.join(_m, _m.c.repository_id == _r.c.id))
            .where(
                _r.c.registry_id == registry_id, _r.c.name == repo, _m.c.subject_digest == subject
            )
            .order_by(_m.c.digest)
        )
        if artifact_type is not None:
            query = query.where(_m.c.artifact_type == artifact_type)
        with self.connection() as conn:
            return [ReferrerRecord(*row) for row in conn.execute(query)]

    # -- uploads ------------------------------------------------------------------------

    def upload(self, upload_id: str) -> UploadRecord | None:
        row = self._one(_UPLOAD_BY_ID, id=upload_id)
        return None if row is None else UploadRecord(*row)

    def uploads_idle_since(self, before: datetime) -> list[UploadRecord]:
        with self.connection() as conn:
            rows = conn.execute(_UPLOADS.where(t.uploads.c.updated_at < before))
            return [UploadRecord(*row) for row in rows]

    def upload_ids(self) -> set[str]:
        with self.connection() as conn:
            return set(conn.execute(select(t.uploads.c.id)).scalars())


class Transaction:
    """One write transaction. Methods are idempotent where a client may retry."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn  # the stores' writes of this package run on it too
        self.now = now
        self.emitted = False  # whether `emit` added an event

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that an exception undoes alone (and raises on), so
        that the rest of the transaction can go on and commit."""
        self.conn.exec_driver_sql("SAVEPOINT part")
        try:
            yield
        except BaseException:
            self.conn.exec_driver_sql("ROLLBACK TO SAVEPOINT part")
            raise
        finally:
            self.conn.exec_driver_sql("RELEASE SAVEPOINT part")

    # -- registries and repositories --------------------------------------------------

    def create_registry(self, name: str, login_server: str, sku: str = "Premium") -> RegistryRecord:
        result = self.conn.execute(
            insert(t.registries).values(
                name=name, login_server=login_server, created_at=self.now, sku=sku
            )
        )
        return RegistryRecord(result.inserted_primary_key[0], name, login_server)

    def repository_id(self, registry_id: int, repo: str) -> int | None:
        return _REPOSITORY_ID.scalar(self.conn, registry_id=registry_id, repo=repo)

    def ensure_repository(self, registry_id: int, repo: str, touch: bool = False) -> int:
        """The repository's id, creating it if needed; `touch` records a content change
        (a manifest push) in `updated_at`. Blob uploads do not touch: they are not content
        a user sees, and the extra write would cost every blob."""
        found = self.repository_id(registry_id, repo)
        if found is not None:
            if touch:
                self.conn.execute(update(_r).where(_r.c.id == found).values(updated_at=self.now))
            return found
        result = self.conn.execute(
            insert(_r).values(
                registry_id=registry_id, name=repo, created_at=self.now, updated_at=self.now
            )
        )
        return result.inserted_primary_key[0]

    # -- blobs --------------------------------------------------------------------------

    def add_blob(self, registry_id: int, digest: str, size: int) -> bool:
        """Add the registry's row of a blob, counting its size in the registry's storage
        use; False (nothing changed) if the registry has the blob already."""
        added = _ADD_BLOB[self.conn.dialect.name].rowcount(
            self.conn, registry_id=registry_id, digest=digest, size=size, created_at=self.now
        )
        if not added:
            return False
        self.change_storage_used(registry_id, size)
        return True

    def change_storage_used(self, registry_id: int, delta: int) -> None:
        """Move the registry's storage use (the sum of its blob rows' sizes) by `delta`:
        every change of blob rows calls this in its own transaction, so the sum is exact
        whatever runs concurrently (summing the rows instead took 130 ms per 100,000)."""
        _CHANGE_STORAGE_USED.rowcount(self.conn, registry_id=registry_id, delta=delta)

    def blob_size(self, registry_id: int, digest: str) -> int | None:
        return _BLOB_SIZE.scalar(self.conn, registry_id=registry_id, digest=digest)

    def link_blob(self, repository_id: int, digest: str) -> None:
        _LINK[self.conn.dialect.name].rowcount(
            self.conn, repository_id=repository_id, digest=digest, created_at=self.now
        )

    def unlink_blob(self, repository_id: int, digest: str) -> bool:
        result = self.conn.execute(
            delete(_l).where(_l.c.repository_id == repository_id, _l.c.digest == digest)
        )
        return result.rowcount > 0

    def linked_blob_sizes(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        wanted = list(set(digests))
        if not wanted:
            return {}
        rows = self.conn.execute(
            select(_l.c.digest, _b.c.size)
            .select_from(
                _l.join(_r, _r.c.id == _l.c.repository_id).join(
                    _b, and_(_b.c.registry_id == _r.c.registry_id, _b.c.digest == _l.c.digest)
                )
            )
            .where(_l.c.repository_id == repository_id, _l.c.digest.in_(wanted))
        )
        return {digest: size for digest, size in rows}

    # -- manifests and tags ------------------------------------------------------------

    def manifest_sizes(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        wanted = list(set(digests))
        if not wanted:
            return {}
        rows = self.conn.execute(
            select(_m.c.digest, _m.c.size).where(
                _m.c.repository_id == repository_id, _m.c.digest.in_(wanted)
            )
        )
        return {digest: size for digest, size in rows}

    def image_sizes(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        """The stored `image_size` of each of these manifests the repository has."""
        wanted = list(set(digests))
        if not wanted:
            return {}
        rows = self.conn.execute(
            select(_m.c.digest, _m.c.image_size).where(
                _m.c.repository_id == repository_id, _m.c.digest.in_(wanted)
            )
        )
        return {digest: size for digest, size in rows}

    def manifest_types(
        self, repository_id: int, digests: Iterable[str] | None = None
    ) -> dict[str, tuple[str, str | None]]:
        """(media type, config media type) of these manifests of the repository, or of
        all of them: what a delete's event says of what went."""
        query = select(_m.c.digest, _m.c.media_type, _m.c.config_media_type).where(
            _m.c.repository_id == repository_id
        )
        if digests is not None:
            query = query.where(_m.c.digest.in_(list(set(digests))))
        return {digest: (media, config) for digest, media, config in self.conn.execute(query)}

    def put_manifest(self, repository_id: int, content: ManifestContent) -> bool:
        """Store a manifest and its references; False if the repository already had it."""
        exists = self.conn.execute(
            select(_m.c.id).where(
                _m.c.repository_id == repository_id, _m.c.digest == content.digest
            )
        ).scalar()
        if exists is not None:
            return False
        result = self.conn.execute(
            insert(_m).values(
                repository_id=repository_id,
                digest=content.digest,
                media_type=content.media_type,
                artifact_type=content.artifact_type,
                subject_digest=content.subject_digest,
                annotations=content.annotations,
                size=len(content.body),
                body=content.body,
                config_media_type=content.config_media_type,
                architecture=content.architecture,
                os=content.os,
                image_size=content.image_size,
                created_at=self.now,
                updated_at=self.now,
            )
        )
        manifest_id = result.inserted_primary_key[0]
        references = {d: 0 for d in content.blob_digests} | {d: 1 for d in content.child_digests}
        if references:
            self.conn.execute(
                insert(t.manifest_references),
                [
                    {"manifest_id": manifest_id, "digest": d, "is_manifest": k}
                    for d, k in references.items()
                ],
            )
        if content.child_digests:
            self._tagged(repository_id, content.child_digests)
        return True

    def _tagged(self, repository_id: int, digests: Iterable[str]) -> None:
        """These manifests got a tag or a parent index: no retention clock runs for them."""
        self.conn.execute(
            update(_m)
            .where(
                _m.c.repository_id == repository_id,
                _m.c.digest.in_(list(digests)),
                _m.c.untagged_at.is_not(None),
            )
            .values(untagged_at=None)
        )

    def _maybe_untagged(self, repository_id: int, digests: Iterable[str]) -> None:
        """Start the retention clock (`untagged_at`) of those of these manifests left with
        no tag and no parent index in the repository."""
        mr, parent = t.manifest_references, _m.alias()
        self.conn.execute(
            update(_m)
            .where(
                _m.c.repository_id == repository_id,
                _m.c.digest.in_(list(digests)),
                _m.c.untagged_at.is_(None),
                ~exists().where(_g.c.repository_id == repository_id, _g.c.digest == _m.c.digest),
                ~exists().where(
                    mr.c.digest == _m.c.digest,
                    parent.c.id == mr.c.manifest_id,
                    parent.c.repository_id == repository_id,
                ),
            )
            .values(untagged_at=self.now)
        )

    def set_tag(self, repository_id: int, tag: str, digest: str) -> str | None:
        """Point `tag` at `digest`; returns the digest it pointed at before, if any."""
        previous = self.conn.execute(
            select(_g.c.digest).where(_g.c.repository_id == repository_id, _g.c.name == tag)
        ).scalar()
        if previous is None:
            self.conn.execute(
                insert(_g).values(
                    repository_id=repository_id,
                    name=tag,
                    digest=digest,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )
        elif previous != digest:
            self.conn.execute(
                update(_g)
                .where(_g.c.repository_id == repository_id, _g.c.name == tag)
                .values(digest=digest, updated_at=self.now)
            )
            self._maybe_untagged(repository_id, [previous])
        if previous != digest:
            self._tagged(repository_id, [digest])
        return previous

    def delete_tag(self, repository_id: int, tag: str) -> str | None:
        digest = self.conn.execute(
            select(_g.c.digest).where(_g.c.repository_id == repository_id, _g.c.name == tag)
        ).scalar()
        if digest is not None:
            self.conn.execute(
                delete(_g).where(_g.c.repository_id == repository_id, _g.c.name == tag)
            )
            self._maybe_untagged(repository_id, [digest])
        return digest

    def delete_manifest(self, repository_id: int, digest: str) -> list[str] | None:
        """Delete a manifest and every tag on it; returns those tags, or None if unknown."""
        manifest_id = self.conn.execute(
            select(_m.c.id).where(_m.c.repository_id == repository_id, _m.c.digest == digest)
        ).scalar()
        if manifest_id is None:
            return None
        where_tags = and_(_g.c.repository_id == repository_id, _g.c.digest == digest)
        removed = list(self.conn.execute(select(_g.c.name).where(where_tags)).scalars())
        self.conn.execute(delete(_g).where(where_tags))
        mr = t.manifest_references
        # The links this manifest referenced may have just lost their last reference:
        # garbage collection's grace period starts again for them (a client pushing the
        # same image again may have found them with HEAD, and skipped their upload).
        self.conn.execute(
            update(_l)
            .where(
                _l.c.repository_id == repository_id,
                _l.c.digest.in_(select(mr.c.digest).where(mr.c.manifest_id == manifest_id)),
            )
            .values(created_at=self.now)
        )
        children = list(
            self.conn.execute(
                select(mr.c.digest).where(mr.c.manifest_id == manifest_id, mr.c.is_manifest == 1)
            ).scalars()
        )
        self.conn.execute(delete(mr).where(mr.c.manifest_id == manifest_id))
        self.conn.execute(delete(_m).where(_m.c.id == manifest_id))
        if children:
            self._maybe_untagged(repository_id, children)
        return removed

    def delete_repository(self, repository_id: int) -> tuple[list[str], list[str]]:
        """Delete a repository with its manifests, tags and blob links (blob bytes stay
        for garbage collection); returns the digests and tags it had."""
        digests = list(
            self.conn.execute(
                select(_m.c.digest).where(_m.c.repository_id == repository_id).order_by(_m.c.digest)
            ).scalars()
        )
        tags = list(
            self.conn.execute(
                select(_g.c.name).where(_g.c.repository_id == repository_id).order_by(_g.c.name)
            ).scalars()
        )
        manifest_ids = select(_m.c.id).where(_m.c.repository_id == repository_id)
        mr = t.manifest_references
        self.conn.execute(delete(mr).where(mr.c.manifest_id.in_(manifest_ids)))
        for table in (_g, _m, _l):
            self.conn.execute(delete(table).where(table.c.repository_id == repository_id))
        self.conn.execute(delete(_r).where(_r.c.id == repository_id))
        return digests, tags

    # -- uploads ------------------------------------------------------------------------

    def create_upload(
        self, upload_id: str, registry_id: int, repo: str, digest: str | None = None
    ) -> None:
        _INSERT_UPLOAD.rowcount(
            self.conn,
            id=upload_id,
            registry_id=registry_id,
            repository=repo,
            size=0,
            created_at=self.now,
            updated_at=self.now,
            digest=digest,
        )

    def set_upload_digest(self, upload_id: str, digest: str) -> bool:
        """Record the digest the upload is about to publish; False if the session is
        gone (expired or cancelled meanwhile)."""
        changed = _SET_UPLOAD_DIGEST.rowcount(
            self.conn, upload_id=upload_id, new_digest=digest, now=self.now
        )
        return changed > 0

    def set_upload_size(self, upload_id: str, size: int) -> None:
        _SET_UPLOAD_SIZE.rowcount(self.conn, upload_id=upload_id, new_size=size, now=self.now)

    def delete_upload(self, upload_id: str) -> bool:
        return _DELETE_UPLOAD.rowcount(self.conn, upload_id=upload_id) > 0

    # -- outbox ------------------------------------------------------------------------

    def emit(self, registry_id: int, action: str, repo: str, payload: dict[str, Any]) -> None:
        """Add an outbox event, announced to the consumers at commit (PostgreSQL)."""
        announce(self.conn)
        self.emitted = True
        self.conn.execute(
            insert(t.events).values(
                registry_id=registry_id,
                action=action,
                repository=repo,
                payload=orjson.dumps(payload).decode(),
                created_at=self.now,
            )
        )
