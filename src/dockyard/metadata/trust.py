"""Queries for signatures and trust policy: a registry's trust policy and trust stores
(`trust_policies`, `trust_stores`), and the indexes of a repository that hold a manifest
(a platform manifest is trusted through its signed index).

Values go in and out plain; the rules live in `dockyard.signing`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_p, _s = t.trust_policies, t.trust_stores
_r, _m, _mr, _g = t.repositories, t.manifests, t.manifest_references, t.tags


@dataclass(frozen=True)
class TrustPolicyRow:
    document: str | None
    enabled: bool
    version: int
    updated_at: datetime


@dataclass(frozen=True)
class TrustStoreRow:
    type: str
    name: str
    material: str
    updated_at: datetime


@dataclass(frozen=True)
class TrustState:
    """Everything a registry's pull checks read: its policy row (None: never set) and
    its stores."""

    policy: TrustPolicyRow | None
    stores: tuple[TrustStoreRow, ...]


def _state(conn: Connection, registry_id: int) -> TrustState:
    row = conn.execute(
        select(_p.c.document, _p.c.enabled, _p.c.version, _p.c.updated_at).where(
            _p.c.registry_id == registry_id
        )
    ).first()
    stores = conn.execute(
        select(_s.c.type, _s.c.name, _s.c.material, _s.c.updated_at)
        .where(_s.c.registry_id == registry_id)
        .order_by(_s.c.type, _s.c.name)
    )
    return TrustState(
        None if row is None else TrustPolicyRow(row[0], bool(row[1]), row[2], row[3]),
        tuple(TrustStoreRow(*s) for s in stores),
    )


def trust_state(meta: Metadata, registry_id: int) -> TrustState:
    with meta.connection() as conn:
        return _state(conn, registry_id)


def trust_versions(meta: Metadata) -> dict[int, int]:
    """Every registry's policy version, by registry id: one query tells a process
    which registries' policies or stores changed."""
    with meta.connection() as conn:
        return dict(conn.execute(select(_p.c.registry_id, _p.c.version)).all())


def indexes_holding(
    meta: Metadata, registry_id: int, repo: str, digest: str
) -> list[tuple[str, str, int]]:
    """(digest, media type, size) of the repository's manifests that list `digest` as a
    child."""
    query = (
        select(_m.c.digest, _m.c.media_type, _m.c.size)
        .select_from(
            _mr.join(_m, _m.c.id == _mr.c.manifest_id).join(_r, _r.c.id == _m.c.repository_id)
        )
        .where(
            _r.c.registry_id == registry_id,
            _r.c.name == repo,
            _mr.c.digest == digest,
            _mr.c.is_manifest == 1,
        )
        .order_by(_m.c.digest)
    )
    with meta.connection() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


class TrustWrites:
    """Changes inside one `Metadata.transaction()`; each moves the policy's version."""

    def __init__(self, tx: Transaction) -> None:
        self._tx = tx

    def state(self, registry_id: int) -> TrustState:
        return _state(self._tx.conn, registry_id)

    def _bump(self, registry_id: int) -> int:
        conn, now = self._tx.conn, self._tx.now
        moved = conn.execute(
            update(_p)
            .where(_p.c.registry_id == registry_id)
            .values(version=_p.c.version + 1, updated_at=now)
            .returning(_p.c.version)
        ).first()
        if moved is not None:
            return moved[0]
        conn.execute(insert(_p).values(registry_id=registry_id, version=1, updated_at=now))
        return 1

    def set_policy(
        self, registry_id: int, document: str | None, enabled: bool | None = None
    ) -> int:
        """Replace the document (None removes it); `enabled` None keeps the switch."""
        version = self._bump(registry_id)
        values: dict[str, object] = {"document": document}
        if enabled is not None:
            values["enabled"] = enabled
        self._tx.conn.execute(update(_p).where(_p.c.registry_id == registry_id).values(**values))
        return version

    def set_enabled(self, registry_id: int, enabled: bool) -> int:
        version = self._bump(registry_id)
        self._tx.conn.execute(
            update(_p).where(_p.c.registry_id == registry_id).values(enabled=enabled)
        )
        return version

    def put_store(self, registry_id: int, kind: str, name: str, material: str) -> None:
        conn, now = self._tx.conn, self._tx.now
        changed = conn.execute(
            update(_s)
            .where(_s.c.registry_id == registry_id, _s.c.type == kind, _s.c.name == name)
            .values(material=material, updated_at=now)
        ).rowcount
        if not changed:
            conn.execute(
                insert(_s).values(
                    registry_id=registry_id, type=kind, name=name, material=material, updated_at=now
                )
            )
        self._bump(registry_id)

    def delete_store(self, registry_id: int, kind: str, name: str) -> bool:
        gone = self._tx.conn.execute(
            delete(_s).where(_s.c.registry_id == registry_id, _s.c.type == kind, _s.c.name == name)
        ).rowcount
        if gone:
            self._bump(registry_id)
        return bool(gone)


def stored_manifests(meta: Metadata, registry_id: int) -> list[tuple[str, str, tuple[str, ...]]]:
    """(repository, digest, tags) of every manifest of the registry, by repository and
    digest."""
    query = (
        select(_r.c.name, _m.c.digest, _g.c.name)
        .select_from(
            _r.join(_m, _m.c.repository_id == _r.c.id).outerjoin(
                _g, and_(_g.c.repository_id == _r.c.id, _g.c.digest == _m.c.digest)
            )
        )
        .where(_r.c.registry_id == registry_id)
        .order_by(_r.c.name, _m.c.digest, _g.c.name)
    )
    found: dict[tuple[str, str], list[str]] = {}
    with meta.connection() as conn:
        for repo, digest, tag in conn.execute(query):
            tags = found.setdefault((repo, digest), [])
            if tag is not None:
                tags.append(tag)
    return [(repo, digest, tuple(tags)) for (repo, digest), tags in found.items()]
