"""`Metadata`: every query the registry makes, as methods with plain arguments.

Reads run outside transactions (one statement each on hot paths); writes run in one
`transaction()` whose `Transaction` also writes the outbox event of the change."""

from __future__ import annotations

import select as selectors
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
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
from sqlalchemy.exc import DBAPIError, OperationalError

from dockyard.metadata import schema as t
from dockyard.metadata.engine import is_sqlite, make_engine, write_transaction, writers_queue
from dockyard.metadata.prepared import Prepared
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
_CACHE_ENTRIES = 4096
# The change counters of the configuration and of the content (`schema.config_generation`,
# `schema.content_generation`), read raw: they are read after every change of the database.
_GENERATIONS = (
    "SELECT (SELECT value FROM config_generation WHERE id = 1),"
    " (SELECT value FROM content_generation WHERE id = 1)"
)
# What the configuration cache may hold: reads of these tables only (registries but
# their storage use), which triggers watch (migration 0012).
CONFIG_TABLES = (
    "registries",
    "network_rules",
    "admin_passwords",
    "identities",
    "identity_secrets",
    "role_assignments",
    "scope_maps",
    "tokens",
    "token_passwords",
    "login_failures",
)
# What the content cache may hold: reads of these tables only (`manifest_by_tag`,
# `manifest_by_digest`, `tags`), which triggers watch (migration 0014). The audit log,
# the outbox and blob uploads change the database all the time without touching them.
CONTENT_TABLES = ("repositories", "tags", "manifests")
_REQUEST: ContextVar[object | None] = ContextVar("dockyard_request", default=None)
_CACHE_MAX_MANIFEST = 256 * 1024  # bytes; bigger manifests are rare and read from the database
_MISSING = object()
_PING_AFTER_IDLE = 5.0  # seconds; a connection idle longer is pinged before use


def _has_unread_data(conn: Connection) -> bool:
    """Whether the server sent something on this idle connection: on PostgreSQL only the
    notice that it is terminating the session (a restart, an administrator), or EOF.
    One non-blocking `select`, no round trip."""
    try:
        fd = conn.connection.dbapi_connection.pgconn.socket  # type: ignore[union-attr]
        return bool(selectors.select([fd], [], [], 0)[0])
    except Exception:
        return True


class Metadata:
    """Each thread keeps one connection (in autocommit mode, transactions begun
    explicitly) for its whole life: checking a connection out of the pool per query
    costs several times the query itself. Never `await` inside `transaction()`: the
    connection belongs to the thread, not to the coroutine."""

    def __init__(self, url: str, clock: Clock) -> None:
        self.engine = make_engine(url)
        self._clock = clock
        self._local = threading.local()
        self._cacheable = is_sqlite(self.engine)
        self._opened: set[Connection] = set()  # every thread's, so close() reaches them
        self._opened_lock = threading.Lock()
        self._epoch = 0  # bumped whenever a thread finds its connection broken
        self._ping_idle = not is_sqlite(self.engine)  # a SQLite file cannot go away

    def close(self) -> None:
        """Close every thread's connection, then the pool (a database server would
        otherwise keep a session per thread that ever queried)."""
        with self._opened_lock:
            opened, self._opened = self._opened, set()
        for conn in opened:
            conn.close()
        self.engine.dispose()

    def _fresh(self) -> Connection | None:
        """This thread's connection if it can still be trusted, else None (after
        dropping it). A connection is distrusted once any thread of this `Metadata`
        met a broken one since it was opened (the database restarted: every session
        is gone), and checked with a ping when it sat idle or the server wrote to it
        unasked (an outage this process did not see)."""
        local = self._local
        conn = getattr(local, "conn", None)
        if conn is None:
            return None
        if local.epoch != self._epoch:
            self._drop(conn)
            return None
        if self._ping_idle and (
            time.monotonic() - local.used > _PING_AFTER_IDLE or _has_unread_data(conn)
        ):
            try:
                conn.exec_driver_sql("SELECT 1")
            except DBAPIError:
                self._broken(conn)
                return None
        return conn

    def _drop(self, conn: Connection) -> None:
        self._local.conn = None
        self._local.cache = None
        with self._opened_lock:
            self._opened.discard(conn)
        with suppress(Exception):
            conn.invalidate()

    def _broken(self, conn: Connection) -> None:
        """`conn` failed as a dead connection does: drop it, and have every other thread
        replace its own before its next use (they are likely dead too)."""
        with self._opened_lock:
            self._epoch += 1
        self._drop(conn)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        conn = self._fresh()
        if conn is None:
            conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
            self._local.epoch = self._epoch
            with self._opened_lock:
                self._opened.add(conn)
        try:
            yield conn
        except DBAPIError as exc:
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                self._broken(conn)
            raise
        finally:
            self._local.used = time.monotonic()

    def _read_cache(self, conn: Connection, config: bool = False) -> dict[tuple, Any] | None:
        """This thread's cache of content reads (`CONTENT_TABLES`), emptied when the
        content changed; with `config`, its cache of configuration reads
        (`CONFIG_TABLES`), emptied when the configuration changed.

        SQLite's `PRAGMA data_version` changes when any other connection (another
        thread, worker or process) commits; this thread's own commits empty the cache in
        `transaction()`. Then the two change counters (`config_generation` and
        `content_generation`, bumped by triggers) are read: audit rows, outbox marks and
        blob uploads change the database many times a second, and would otherwise have
        every request load the registries, network rules, logins, manifests and tag
        lists again. Other databases have no such cheap check: no cache there."""
        if not self._cacheable:
            return None
        local = self._local
        cache = getattr(local, "cache", None)
        request = _REQUEST.get()
        if (
            cache is not None
            and request is not None
            and getattr(local, "checked_for", None) is request
        ):
            # checked already in this request: one snapshot per request
            return local.config if config else cache
        dbapi = conn.connection.dbapi_connection
        version = dbapi.execute("PRAGMA data_version").fetchone()[0]
        if cache is None or local.version != version or len(cache) >= _CACHE_ENTRIES:
            local.version = version
            configuration, content = dbapi.execute(_GENERATIONS).fetchone()
            if cache is None or local.content != content or len(cache) >= _CACHE_ENTRIES:
                cache = local.cache = {}
                local.content = content
            kept = getattr(local, "config", None)
            if kept is None or local.generation != configuration or len(kept) >= _CACHE_ENTRIES:
                local.config = {}
                local.generation = configuration
        local.checked_for = request
        return local.config if config else cache

    @staticmethod
    def begin_request() -> None:
        """Mark the start of a request: within it, the read cache is checked against the
        database once, not once per read (the API's outermost middleware calls this)."""
        _REQUEST.set(object())

    def _checked_cache(self, config: bool = False) -> dict[tuple, Any] | None:
        """This thread's read cache (with `config`, its configuration cache) if it was
        checked against the database already in this request (so a hit needs no
        connection at all), else None."""
        local = self._local
        request = _REQUEST.get()
        if request is not None and getattr(local, "checked_for", None) is request:
            return local.config if config else local.cache
        return None

    def _cached(self, key: tuple, load: Callable[[Connection], Any], config: bool = False) -> Any:
        """`load(conn)`, remembered under `key` until the database changes (with
        `config`, a read of `CONFIG_TABLES` only: until the configuration changes)."""
        checked = self._checked_cache(config)
        if checked is not None:
            found = checked.get(key, _MISSING)
            if found is not _MISSING:
                return found
        with self._connection() as conn:
            cache = self._read_cache(conn, config)
            if cache is None:
                return load(conn)
            found = cache.get(key, _MISSING)
            if found is _MISSING:
                found = load(conn)
                if not isinstance(found, ManifestRecord) or found.size <= _CACHE_MAX_MANIFEST:
                    cache[key] = found
            return found

    def recall(self, key: tuple, config: bool = False) -> Any:
        """What `remember` kept under `key`, if the database (with `config`: the
        configuration) has not changed since; else None. For results computed off this
        thread (e.g. a password check)."""
        checked = self._checked_cache(config)
        if checked is not None:
            return checked.get(key)
        with self._connection() as conn:
            cache = self._read_cache(conn, config)
            return None if cache is None else cache.get(key)

    def remember(self, key: tuple, value: Any, config: bool = False) -> None:
        with self._connection() as conn:
            cache = self._read_cache(conn, config)
            if cache is not None:
                cache[key] = value

    def _manifest(self, statement: Any, **params: Any) -> Callable[[Connection], Any]:
        def load(conn: Connection) -> ManifestRecord | None:
            row = conn.execute(statement, params).first()
            if row is None:
                return None
            digest, media_type, size, body, *read = row
            return ManifestRecord(digest, media_type, size, body, ReadFlags(*map(bool, read)))

        return load

    def ping(self) -> None:
        with self._connection() as conn:
            conn.exec_driver_sql("SELECT 1")

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
            with self._connection() as conn, write_transaction(conn):
                yield Transaction(conn, self._clock())
        finally:
            self._local.cache = None

    def _one(self, statement: Prepared, **params: Any) -> tuple[Any, ...] | None:
        with self._connection() as conn:
            return statement.first(conn, **params)

    # -- registries -------------------------------------------------------------------

    def registries(self) -> list[RegistryRecord]:
        with self._connection() as conn:
            rows = conn.execute(
                select(t.registries.c.id, t.registries.c.name, t.registries.c.login_server)
            )
            return [RegistryRecord(*row) for row in rows]

    # -- repositories, manifests, blobs, tags ----------------------------------------

    def repository_exists(self, registry_id: int, repo: str) -> bool:
        return self._one(_REPOSITORY_ID, registry_id=registry_id, repo=repo) is not None

    def manifest_by_tag(self, registry_id: int, repo: str, tag: str) -> ManifestRecord | None:
        return self._cached(
            ("tag", registry_id, repo, tag),
            self._manifest(_MANIFEST_BY_TAG, registry_id=registry_id, repo=repo, tag=tag),
        )

    def manifest_by_digest(self, registry_id: int, repo: str, digest: str) -> ManifestRecord | None:
        return self._cached(
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

        return self._cached(("tags", registry_id, repo, last, n), load)

    def repositories(self, registry_id: int, last: str | None, n: int) -> list[str]:
        """Listable repositories after `last` in lexical order."""
        query = select(_r.c.name).where(_r.c.registry_id == registry_id, _r.c.list_enabled)
        if last:
            query = query.where(_r.c.name > last)
        with self._connection() as conn:
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
        with self._connection() as conn:
            return [ReferrerRecord(*row) for row in conn.execute(query)]

    # -- uploads ------------------------------------------------------------------------

    def upload(self, upload_id: str) -> UploadRecord | None:
        row = self._one(_UPLOAD_BY_ID, id=upload_id)
        return None if row is None else UploadRecord(*row)

    def uploads_idle_since(self, before: datetime) -> list[UploadRecord]:
        with self._connection() as conn:
            rows = conn.execute(_UPLOADS.where(t.uploads.c.updated_at < before))
            return [UploadRecord(*row) for row in rows]

    def upload_ids(self) -> set[str]:
        with self._connection() as conn:
            return set(conn.execute(select(t.uploads.c.id)).scalars())


class KeptRead:
    """A small read of the configuration (`CONFIG_TABLES`) that every request makes
    (network policies, tiers): on SQLite kept in the configuration cache until the
    configuration changes; elsewhere, with no equally cheap change counter, kept `ttl`
    seconds in this process."""

    def __init__(
        self,
        meta: Metadata,
        key: tuple,
        load: Callable[[Connection], Any],
        ttl: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meta = meta
        self._key = key
        self._load = load
        self._ttl = ttl
        self._monotonic = monotonic
        self._memo: tuple[float, Any] | None = None

    def __call__(self) -> Any:
        if self._meta._cacheable:
            return self._meta._cached(self._key, self._load, config=True)
        memo, now = self._memo, self._monotonic()
        if memo is None or now >= memo[0]:
            with self._meta._connection() as conn:
                memo = self._memo = (now + self._ttl, self._load(conn))
        return memo[1]


class Transaction:
    """One write transaction. Methods are idempotent where a client may retry."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self._conn = conn
        self.now = now

    # -- registries and repositories --------------------------------------------------

    def create_registry(self, name: str, login_server: str, sku: str = "Premium") -> RegistryRecord:
        result = self._conn.execute(
            insert(t.registries).values(
                name=name, login_server=login_server, created_at=self.now, sku=sku
            )
        )
        return RegistryRecord(result.inserted_primary_key[0], name, login_server)

    def repository_id(self, registry_id: int, repo: str) -> int | None:
        return _REPOSITORY_ID.scalar(self._conn, registry_id=registry_id, repo=repo)

    def ensure_repository(self, registry_id: int, repo: str, touch: bool = False) -> int:
        """The repository's id, creating it if needed; `touch` records a content change
        (a manifest push) in `updated_at`. Blob uploads do not touch: they are not content
        a user sees, and the extra write would cost every blob."""
        found = self.repository_id(registry_id, repo)
        if found is not None:
            if touch:
                self._conn.execute(update(_r).where(_r.c.id == found).values(updated_at=self.now))
            return found
        result = self._conn.execute(
            insert(_r).values(
                registry_id=registry_id, name=repo, created_at=self.now, updated_at=self.now
            )
        )
        return result.inserted_primary_key[0]

    # -- blobs --------------------------------------------------------------------------

    def add_blob(self, registry_id: int, digest: str, size: int) -> bool:
        """Add the registry's row of a blob, counting its size in the registry's storage
        use; False (nothing changed) if the registry has the blob already."""
        added = _ADD_BLOB[self._conn.dialect.name].rowcount(
            self._conn, registry_id=registry_id, digest=digest, size=size, created_at=self.now
        )
        if not added:
            return False
        self.change_storage_used(registry_id, size)
        return True

    def change_storage_used(self, registry_id: int, delta: int) -> None:
        """Move the registry's storage use (the sum of its blob rows' sizes) by `delta`:
        every change of blob rows calls this in its own transaction, so the sum is exact
        whatever runs concurrently (summing the rows instead took 130 ms per 100,000)."""
        _CHANGE_STORAGE_USED.rowcount(self._conn, registry_id=registry_id, delta=delta)

    def blob_size(self, registry_id: int, digest: str) -> int | None:
        return _BLOB_SIZE.scalar(self._conn, registry_id=registry_id, digest=digest)

    def link_blob(self, repository_id: int, digest: str) -> None:
        _LINK[self._conn.dialect.name].rowcount(
            self._conn, repository_id=repository_id, digest=digest, created_at=self.now
        )

    def unlink_blob(self, repository_id: int, digest: str) -> bool:
        result = self._conn.execute(
            delete(_l).where(_l.c.repository_id == repository_id, _l.c.digest == digest)
        )
        return result.rowcount > 0

    def linked_blob_sizes(self, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
        wanted = list(set(digests))
        if not wanted:
            return {}
        rows = self._conn.execute(
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
        rows = self._conn.execute(
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
        rows = self._conn.execute(
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
        return {digest: (media, config) for digest, media, config in self._conn.execute(query)}

    def put_manifest(self, repository_id: int, content: ManifestContent) -> bool:
        """Store a manifest and its references; False if the repository already had it."""
        exists = self._conn.execute(
            select(_m.c.id).where(
                _m.c.repository_id == repository_id, _m.c.digest == content.digest
            )
        ).scalar()
        if exists is not None:
            return False
        result = self._conn.execute(
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
            self._conn.execute(
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
        self._conn.execute(
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
        self._conn.execute(
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
        previous = self._conn.execute(
            select(_g.c.digest).where(_g.c.repository_id == repository_id, _g.c.name == tag)
        ).scalar()
        if previous is None:
            self._conn.execute(
                insert(_g).values(
                    repository_id=repository_id,
                    name=tag,
                    digest=digest,
                    created_at=self.now,
                    updated_at=self.now,
                )
            )
        elif previous != digest:
            self._conn.execute(
                update(_g)
                .where(_g.c.repository_id == repository_id, _g.c.name == tag)
                .values(digest=digest, updated_at=self.now)
            )
            self._maybe_untagged(repository_id, [previous])
        if previous != digest:
            self._tagged(repository_id, [digest])
        return previous

    def delete_tag(self, repository_id: int, tag: str) -> str | None:
        digest = self._conn.execute(
            select(_g.c.digest).where(_g.c.repository_id == repository_id, _g.c.name == tag)
        ).scalar()
        if digest is not None:
            self._conn.execute(
                delete(_g).where(_g.c.repository_id == repository_id, _g.c.name == tag)
            )
            self._maybe_untagged(repository_id, [digest])
        return digest

    def delete_manifest(self, repository_id: int, digest: str) -> list[str] | None:
        """Delete a manifest and every tag on it; returns those tags, or None if unknown."""
        manifest_id = self._conn.execute(
            select(_m.c.id).where(_m.c.repository_id == repository_id, _m.c.digest == digest)
        ).scalar()
        if manifest_id is None:
            return None
        where_tags = and_(_g.c.repository_id == repository_id, _g.c.digest == digest)
        removed = list(self._conn.execute(select(_g.c.name).where(where_tags)).scalars())
        self._conn.execute(delete(_g).where(where_tags))
        mr = t.manifest_references
        # The links this manifest referenced may have just lost their last reference:
        # garbage collection's grace period starts again for them (a client pushing the
        # same image again may have found them with HEAD, and skipped their upload).
        self._conn.execute(
            update(_l)
            .where(
                _l.c.repository_id == repository_id,
                _l.c.digest.in_(select(mr.c.digest).where(mr.c.manifest_id == manifest_id)),
            )
            .values(created_at=self.now)
        )
        children = list(
            self._conn.execute(
                select(mr.c.digest).where(mr.c.manifest_id == manifest_id, mr.c.is_manifest == 1)
            ).scalars()
        )
        self._conn.execute(delete(mr).where(mr.c.manifest_id == manifest_id))
        self._conn.execute(delete(_m).where(_m.c.id == manifest_id))
        if children:
            self._maybe_untagged(repository_id, children)
        return removed

    def delete_repository(self, repository_id: int) -> tuple[list[str], list[str]]:
        """Delete a repository with its manifests, tags and blob links (blob bytes stay
        for garbage collection); returns the digests and tags it had."""
        digests = list(
            self._conn.execute(
                select(_m.c.digest).where(_m.c.repository_id == repository_id).order_by(_m.c.digest)
            ).scalars()
        )
        tags = list(
            self._conn.execute(
                select(_g.c.name).where(_g.c.repository_id == repository_id).order_by(_g.c.name)
            ).scalars()
        )
        manifest_ids = select(_m.c.id).where(_m.c.repository_id == repository_id)
        mr = t.manifest_references
        self._conn.execute(delete(mr).where(mr.c.manifest_id.in_(manifest_ids)))
        for table in (_g, _m, _l):
            self._conn.execute(delete(table).where(table.c.repository_id == repository_id))
        self._conn.execute(delete(_r).where(_r.c.id == repository_id))
        return digests, tags

    # -- uploads ------------------------------------------------------------------------

    def create_upload(
        self, upload_id: str, registry_id: int, repo: str, digest: str | None = None
    ) -> None:
        _INSERT_UPLOAD.rowcount(
            self._conn,
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
            self._conn, upload_id=upload_id, new_digest=digest, now=self.now
        )
        return changed > 0

    def set_upload_size(self, upload_id: str, size: int) -> None:
        _SET_UPLOAD_SIZE.rowcount(self._conn, upload_id=upload_id, new_size=size, now=self.now)

    def delete_upload(self, upload_id: str) -> bool:
        return _DELETE_UPLOAD.rowcount(self._conn, upload_id=upload_id) > 0

    # -- outbox ------------------------------------------------------------------------

    def emit(self, registry_id: int, action: str, repo: str, payload: dict[str, Any]) -> None:
        self._conn.execute(
            insert(t.events).values(
                registry_id=registry_id,
                action=action,
                repository=repo,
                payload=orjson.dumps(payload).decode(),
                created_at=self.now,
            )
        )
