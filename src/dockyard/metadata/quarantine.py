"""Queries for quarantine: whether a registry's `quarantinePolicy` is on, and the state a
quarantine writer set on a manifest (`Passed`, `Failed`, with its details).

The two reads a manifest pull makes (`policy_enabled`, `state_of`) go through the read
cache (configuration and content), so that after the request's first check they are
dictionary look-ups. Values go in and out plain; the rules live in `dockyard.quarantine`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, Select, delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_p = t.quarantine_policies
_s = t.quarantine_states
_m = t.manifests
_r = t.repositories


@dataclass(frozen=True)
class StoredState:
    state: str
    details: str | None


@dataclass(frozen=True)
class QuarantinedManifest:
    """A manifest whose state a writer sets: what its webhook notices name."""

    id: int
    digest: str
    size: int
    media_type: str
    tags: tuple[str, ...]
    children: tuple[str, ...]  # an index's child manifests


def _in_repository(
    registry_id: int, repo: str, digests: Iterable[str]
) -> Select[tuple[str, str, str | None]]:
    return (
        select(_m.c.digest, _s.c.state, _s.c.details)
        .join(_r, _r.c.id == _m.c.repository_id)
        .join(_s, _s.c.manifest_id == _m.c.id)
        .where(_r.c.registry_id == registry_id, _r.c.name == repo, _m.c.digest.in_(digests))
    )


def policy_enabled(meta: Metadata, registry_id: int, fresh: bool = False) -> bool:
    """Whether the policy is on, as this request's snapshot says (`fresh`: as the
    database says now, for a request that has just changed it)."""

    def load(conn: Connection) -> bool:
        found = conn.execute(select(_p.c.registry_id).where(_p.c.registry_id == registry_id))
        return found.first() is not None

    if fresh:
        with meta.connection() as conn:
            return load(conn)
    return meta.cached(("quarantine_policy", registry_id), load, config=True)


def set_policy(meta: Metadata, registry_id: int, enabled: bool) -> None:
    with meta.transaction() as tx:
        tx.conn.execute(delete(_p).where(_p.c.registry_id == registry_id))
        if enabled:
            tx.conn.execute(insert(_p).values(registry_id=registry_id, enabled_at=tx.now))


def state_of(meta: Metadata, registry_id: int, repo: str, digest: str) -> StoredState | None:
    """The state set on `repo@digest`, None if none was."""

    def load(conn: Connection) -> StoredState | None:
        row = conn.execute(_in_repository(registry_id, repo, [digest])).first()
        return None if row is None else StoredState(row[1], row[2])

    return meta.cached(("quarantine_state", registry_id, repo, digest), load)


def states_of(
    meta: Metadata, registry_id: int, repo: str, digests: Iterable[str]
) -> dict[str, StoredState]:
    """The states set on those of `digests` that have one (a listing's page)."""
    wanted = list(digests)
    if not wanted:
        return {}
    with meta.connection() as conn:
        rows = conn.execute(_in_repository(registry_id, repo, wanted)).all()
    return {digest: StoredState(state, details) for digest, state, details in rows}


class QuarantineWrites:
    """Quarantine's writes inside a caller's transaction."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def manifest(self, registry_id: int, repo: str, digest: str) -> QuarantinedManifest | None:
        conn = self._tx.conn
        row = conn.execute(
            select(_m.c.id, _m.c.repository_id, _m.c.size, _m.c.media_type)
            .join(_r, _r.c.id == _m.c.repository_id)
            .where(_r.c.registry_id == registry_id, _r.c.name == repo, _m.c.digest == digest)
        ).first()
        if row is None:
            return None
        manifest_id, repository_id, size, media_type = row
        tags = conn.execute(
            select(t.tags.c.name)
            .where(t.tags.c.repository_id == repository_id, t.tags.c.digest == digest)
            .order_by(t.tags.c.name)
        ).scalars()
        refs = t.manifest_references
        children = conn.execute(
            select(refs.c.digest).where(refs.c.manifest_id == manifest_id, refs.c.is_manifest == 1)
        ).scalars()
        return QuarantinedManifest(
            manifest_id, digest, size, media_type, tuple(tags), tuple(sorted(children))
        )

    def set_state(self, manifest_id: int, state: str, details: str | None) -> str | None:
        """Set the state; the one it replaces (None: none was set)."""
        conn = self._tx.conn
        previous = conn.execute(
            select(_s.c.state).where(_s.c.manifest_id == manifest_id)
        ).scalar_one_or_none()
        values = {"state": state, "details": details, "updated_at": self._tx.now}
        if previous is None:
            conn.execute(insert(_s).values(manifest_id=manifest_id, **values))
        else:
            conn.execute(update(_s).where(_s.c.manifest_id == manifest_id).values(**values))
        return previous
