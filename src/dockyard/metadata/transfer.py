"""Copying every row from one Dockyard database to another (`dockyard migrate`): the SQL
half of moving an embedded installation to PostgreSQL. Never touches blob bytes.

Rows keep their ids, so every foreign key stays true without remapping; PostgreSQL's
sequences are then moved past the copied ids. Tables go parents first, in one target
transaction: an interrupted copy leaves the target as it was. A row already in the
target (a run before this one) is updated to the source's values, never added twice;
nothing in the target is deleted. Upload sessions are not copied: their partial bytes
stay behind, and clients start those uploads again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Table,
    false,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from dockyard.metadata import schema as t

_BATCH = 500
# Sessions in progress: their bytes are partial uploads in the source's storage.
_NOT_COPIED = {t.uploads.name}


class TargetConflict(RuntimeError):
    """The target database holds data of another installation."""


@dataclass(frozen=True)
class StoredBlob:
    registry: str
    digest: str
    size: int


def copied_tables() -> list[Table]:
    """The tables `copy_rows` copies, parents before children."""
    return [table for table in t.metadata.sorted_tables if table.name not in _NOT_COPIED]


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in copied_tables()
        }


def stored_blobs(engine: Engine) -> list[StoredBlob]:
    """Every blob row with its registry's name: the bytes a copy must carry."""
    statement = (
        select(t.registries.c.name, t.blobs.c.digest, t.blobs.c.size)
        .join(t.registries, t.registries.c.id == t.blobs.c.registry_id)
        .order_by(t.registries.c.name, t.blobs.c.digest)
    )
    with engine.connect() as conn:
        return [StoredBlob(*row) for row in conn.execute(statement)]


def check_target(source: Engine, target: Engine) -> None:
    """Refuse a target that holds a registry the source does not have under the same id
    and name: ids are kept, so its rows would mix with the source's. An empty target, or
    one an earlier run of the same copy filled, passes."""
    if not inspect(target).has_table(t.registries.name):
        return
    columns = (t.registries.c.id, t.registries.c.name)
    with source.connect() as conn:
        ours = set(conn.execute(select(*columns)).all())
    with target.connect() as conn:
        theirs = set(conn.execute(select(*columns)).all())
    foreign = sorted(theirs - ours)
    if foreign:
        registry_id, name = foreign[0]
        raise TargetConflict(
            f"the target database already holds registry {name!r} (id {registry_id}), "
            "which the source does not have: migrate into an empty database"
        )


def copy_rows(
    source: Engine, target: Engine, copied: Callable[[str, int], None] = lambda _t, _n: None
) -> dict[str, int]:
    """Copy every table's rows into `target` (whose schema must be current) in one
    transaction; rows per table. `copied(table, rows)` reports each batch."""
    counts: dict[str, int] = {}
    with source.connect() as reader, target.begin() as writer:
        for table in copied_tables():
            counts[table.name] = 0
            upsert = _upsert(writer, table)
            for batch in _rows(reader, table):
                try:
                    writer.execute(upsert, batch)
                except IntegrityError as exc:
                    raise TargetConflict(
                        f"the target's {table.name} holds rows that conflict with the "
                        f"source's ({type(exc.orig).__name__}): migrate into an empty database"
                    ) from None
                counts[table.name] += len(batch)
                copied(table.name, len(batch))
        _recount_storage(writer)
        if writer.dialect.name == "postgresql":
            _advance_sequences(writer)
    return counts


def _recount_storage(conn: Connection) -> None:
    """Set each registry's storage use to the sum of its blob rows in the target, which
    may keep blob rows of an earlier run that the source has collected since."""
    _reg, _b = t.registries, t.blobs
    conn.execute(
        update(_reg).values(
            storage_used_bytes=select(func.coalesce(func.sum(_b.c.size), 0))
            .where(_b.c.registry_id == _reg.c.id)
            .scalar_subquery()
        )
    )


def _rows(conn: Connection, table: Table) -> Iterator[list[dict]]:
    result = conn.execute(select(table).order_by(*table.primary_key.columns))
    for part in result.mappings().partitions(_BATCH):
        yield [dict(row) for row in part]


def _upsert(conn: Connection, table: Table) -> Executable:
    """INSERT that updates the row whose primary key is taken (by an earlier run)."""
    dialect_insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = dialect_insert(table)
    keys = list(table.primary_key.columns)
    values = {c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key}
    if not values:
        return statement.on_conflict_do_nothing(index_elements=keys)
    return statement.on_conflict_do_update(index_elements=keys, set_=values)


def _advance_sequences(conn: Connection) -> None:
    """Rows were inserted with their ids: move each id sequence past the largest one, so
    the next row the server inserts does not collide."""
    for table in copied_tables():
        column = table.autoincrement_column
        if column is None:
            continue
        conn.execute(
            select(
                func.setval(
                    func.pg_get_serial_sequence(table.name, column.name),
                    select(func.coalesce(func.max(column), 0) + 1).scalar_subquery(),
                    false(),
                )
            )
        )
