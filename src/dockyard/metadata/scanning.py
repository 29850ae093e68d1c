"""Queries for vulnerability scanning: the imported OSV advisories and the packages they
affect, each manifest's latest scan, a registry's scanning switches and pull policy.

Values go in and out plain (JSON columns as text); the rules live in
`dockyard.scanning`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, tuple_, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_adv = t.vuln_advisories
_aff = t.vuln_affected
_res = t.scan_results
_pol = t.scan_policies
_CHUNK = 500  # bound parameters per statement stay far below SQLite's limit


@dataclass(frozen=True)
class AdvisoryRow:
    """What an import writes of one advisory."""

    id: str
    modified: datetime
    aliases: tuple[str, ...]
    summary: str | None
    severity: str
    score: float | None
    vector: str | None
    # (ecosystem, name, ranges JSON, versions JSON) of each affected package
    affected: tuple[tuple[str, str, str, str], ...]


@dataclass
class ImportCounts:
    read: int = 0
    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    withdrawn: int = 0  # withdrawn records, and stored advisories removed for them
    packages: int = 0  # affected-package rows written


@dataclass(frozen=True)
class AffectedRow:
    advisory: str
    aliases: tuple[str, ...]
    summary: str | None
    severity: str
    score: float | None
    ecosystem: str
    name: str
    ranges: str  # JSON, as stored: read where the versions are compared (`scanning.matching`)
    versions: str  # JSON


@dataclass(frozen=True)
class ScanRow:
    registry_id: int
    digest: str
    repository: str
    scanned_at: datetime
    worst: str
    findings: list[dict[str, Any]]
    report_digest: str | None


@dataclass(frozen=True)
class PolicyRow:
    scan_on_push: bool = False
    block_enabled: bool = False
    block_severity: str = "critical"
    allowlist: tuple[str, ...] = ()
    repositories: tuple[str, ...] = ()
    quarantine_writer: bool = False


# -- the advisory database -----------------------------------------------------------------


def import_batch(
    tx: Transaction, rows: Sequence[AdvisoryRow], withdrawn: Sequence[str], counts: ImportCounts
) -> None:
    """Add the advisories not stored yet, replace those stored with an older `modified`,
    leave the rest; remove the withdrawn ones. Bulk statements: one select, one delete,
    two multi-row inserts per batch."""
    conn = tx.conn
    ids = [row.id for row in rows] + list(withdrawn)
    stored: dict[str, datetime] = {}
    for chunk in _chunks(ids):
        query = select(_adv.c.id, _adv.c.modified).where(_adv.c.id.in_(chunk))
        stored.update((row[0], row[1]) for row in conn.execute(query))
    newest: dict[str, AdvisoryRow] = {}
    for row in rows:  # a file may hold one id twice: the newest wins, the other is left
        if row.id in newest:
            counts.unchanged += 1
        if row.id not in newest or newest[row.id].modified < row.modified:
            newest[row.id] = row
    writing = []
    for row in newest.values():
        before = stored.get(row.id)
        if before is None:
            counts.added += 1
        elif _utc(before) < row.modified:
            counts.replaced += 1
        else:
            counts.unchanged += 1
            continue
        writing.append(row)
    gone = [row.id for row in writing if row.id in stored] + [i for i in withdrawn if i in stored]
    counts.withdrawn += len(withdrawn)
    for chunk in _chunks(gone):
        conn.execute(delete(_aff).where(_aff.c.advisory_id.in_(chunk)))
        conn.execute(delete(_adv).where(_adv.c.id.in_(chunk)))
    if not writing:
        return
    conn.execute(
        insert(_adv),
        [
            {
                "id": row.id,
                "modified": row.modified,
                "aliases": orjson.dumps(list(row.aliases)).decode(),
                "summary": row.summary,
                "severity": row.severity,
                "score": row.score,
                "vector": row.vector,
                "imported_at": tx.now,
            }
            for row in writing
        ],
    )
    affected = [
        {"advisory_id": row.id, "ecosystem": e, "name": n, "ranges": r, "versions": v}
        for row in writing
        for e, n, r, v in row.affected
    ]
    if affected:
        conn.execute(insert(_aff), affected)
    counts.packages += len(affected)


def affected_rows(meta: Metadata, packages: Iterable[tuple[str, str]]) -> list[AffectedRow]:
    """Every affected-package entry naming one of these (ecosystem, name) pairs, with its
    advisory: one query per 500 pairs on the (ecosystem, name) index."""
    keys = sorted(set(packages))
    found = []
    query = select(
        _adv.c.id,
        _adv.c.aliases,
        _adv.c.summary,
        _adv.c.severity,
        _adv.c.score,
        _aff.c.ecosystem,
        _aff.c.name,
        _aff.c.ranges,
        _aff.c.versions,
    ).join(_adv, _adv.c.id == _aff.c.advisory_id)
    with meta.connection() as conn:
        for chunk in _chunks(keys):
            for row in conn.execute(query.where(tuple_(_aff.c.ecosystem, _aff.c.name).in_(chunk))):
                found.append(
                    AffectedRow(
                        advisory=row.id,
                        aliases=tuple(orjson.loads(row.aliases)),
                        summary=row.summary,
                        severity=row.severity,
                        score=row.score,
                        ecosystem=row.ecosystem,
                        name=row.name,
                        ranges=row.ranges,
                        versions=row.versions,
                    )
                )
    return found


def rated(meta: Metadata, ids: Iterable[str]) -> dict[str, tuple[str, float | None]]:
    """The severity and score of those of `ids` that are stored advisories (a Debian
    advisory's CVE alias imported from another export, say)."""
    out: dict[str, tuple[str, float | None]] = {}
    with meta.connection() as conn:
        for chunk in _chunks(sorted(set(ids))):
            query = select(_adv.c.id, _adv.c.severity, _adv.c.score).where(_adv.c.id.in_(chunk))
            out.update({row.id: (row.severity, row.score) for row in conn.execute(query)})
    return out


def database_state(meta: Metadata) -> tuple[int, int, datetime | None]:
    """How many advisories and affected packages are stored, and when the database last
    changed (None: never imported)."""
    with meta.connection() as conn:
        advisories, changed = conn.execute(select(func.count(), func.max(_adv.c.imported_at))).one()
        packages = conn.execute(select(func.count()).select_from(_aff)).scalar_one()
    return advisories, packages, _utc(changed) if changed is not None else None


def database_changed_at(meta: Metadata) -> datetime | None:
    """When the database last changed (the newest `imported_at`, on its index)."""
    with meta.connection() as conn:
        changed = conn.execute(select(func.max(_adv.c.imported_at))).scalar_one()
    return None if changed is None else _utc(changed)


# -- scans -------------------------------------------------------------------------------


def _scan_row(row: Any) -> ScanRow:
    return ScanRow(
        row.registry_id,
        row.digest,
        row.repository,
        _utc(row.scanned_at),
        row.worst,
        orjson.loads(row.findings),
        row.report_digest,
    )


def scan_loader(registry_id: int, digest: str) -> Callable[[Connection], ScanRow | None]:
    """A read of a manifest's latest scan, for `Metadata.cached` (the pull policy's)."""

    def load(conn: Connection) -> ScanRow | None:
        found = conn.execute(
            select(_res).where(_res.c.registry_id == registry_id, _res.c.digest == digest)
        ).first()
        return None if found is None else _scan_row(found)

    return load


def scan_of(meta: Metadata, registry_id: int, digest: str) -> ScanRow | None:
    with meta.connection() as conn:
        return scan_loader(registry_id, digest)(conn)


def put_scan(
    tx: Transaction,
    registry_id: int,
    digest: str,
    repository: str,
    worst: str,
    findings: list[dict[str, Any]],
    report_digest: str | None,
) -> tuple[str, str] | None:
    """Store a manifest's latest scan; the (repository, report digest) of the report of
    the scan it replaces, if it had one."""
    previous = tx.conn.execute(
        select(_res.c.repository, _res.c.report_digest).where(
            _res.c.registry_id == registry_id, _res.c.digest == digest
        )
    ).first()
    values = {
        "repository": repository,
        "scanned_at": tx.now,
        "worst": worst,
        "findings": orjson.dumps(findings).decode(),
        "report_digest": report_digest,
    }
    if previous is None:
        tx.conn.execute(insert(_res).values(registry_id=registry_id, digest=digest, **values))
        return None
    tx.conn.execute(
        update(_res)
        .where(_res.c.registry_id == registry_id, _res.c.digest == digest)
        .values(**values)
    )
    if previous.report_digest is None:
        return None
    return previous.repository, previous.report_digest


def forget_scan(tx: Transaction, registry_id: int, digest: str) -> None:
    tx.conn.execute(delete(_res).where(_res.c.registry_id == registry_id, _res.c.digest == digest))


def stale_scans(meta: Metadata, before: datetime, limit: int) -> list[tuple[int, str, str]]:
    """(registry id, repository, digest) of scans made before `before`, oldest first."""
    query = (
        select(_res.c.registry_id, _res.c.repository, _res.c.digest)
        .where(_res.c.scanned_at < before)
        .order_by(_res.c.scanned_at)
        .limit(limit)
    )
    with meta.connection() as conn:
        return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]


def scan_counts(meta: Metadata, stale_before: datetime | None) -> dict[tuple[int, str], int]:
    """Scanned manifests by (registry id, worst severity); with `stale_before`, only
    those scanned before it (the rescans still due)."""
    query = select(_res.c.registry_id, _res.c.worst, func.count()).group_by(
        _res.c.registry_id, _res.c.worst
    )
    if stale_before is not None:
        query = query.where(_res.c.scanned_at < stale_before)
    with meta.connection() as conn:
        return {(row[0], row[1]): row[2] for row in conn.execute(query)}


# -- policies ----------------------------------------------------------------------------


def policy_loader(registry_id: int) -> Callable[[Connection], PolicyRow]:
    def load(conn: Connection) -> PolicyRow:
        row = conn.execute(select(_pol).where(_pol.c.registry_id == registry_id)).first()
        if row is None:
            return PolicyRow()
        return PolicyRow(
            bool(row.scan_on_push),
            bool(row.block_enabled),
            row.block_severity,
            tuple(orjson.loads(row.allowlist)),
            tuple(orjson.loads(row.repositories)),
            bool(row.quarantine_writer),
        )

    return load


def put_policy(tx: Transaction, registry_id: int, policy: PolicyRow) -> None:
    values = {
        "scan_on_push": policy.scan_on_push,
        "block_enabled": policy.block_enabled,
        "block_severity": policy.block_severity,
        "allowlist": orjson.dumps(list(policy.allowlist)).decode(),
        "repositories": orjson.dumps(list(policy.repositories)).decode(),
        "quarantine_writer": policy.quarantine_writer,
    }
    exists = tx.conn.execute(
        select(_pol.c.registry_id).where(_pol.c.registry_id == registry_id)
    ).first()
    if exists is None:
        tx.conn.execute(insert(_pol).values(registry_id=registry_id, **values))
    else:
        tx.conn.execute(update(_pol).where(_pol.c.registry_id == registry_id).values(**values))


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
