"""content_generation: a counter that every change to the tables behind the per-thread
content cache bumps (on SQLite by triggers), so that manifest reads and tag lists stay
cached while audit rows, outbox marks and blob uploads are written

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29 21:35:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# The tables the content cache reads (`metadata.read_cache.CONTENT_TABLES` says which reads
# those are; a test checks the two agree).
_TABLES = ("repositories", "tags", "manifests")
_BUMP = "BEGIN UPDATE content_generation SET value = value + 1 WHERE id = 1; END"


def _triggers() -> list[tuple[str, str]]:
    return [
        (f"content_{table}_{event}", f"AFTER {event.upper()} ON {table} {_BUMP}")
        for table in _TABLES
        for event in ("insert", "update", "delete")
    ]


def upgrade() -> None:
    op.create_table(
        "content_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO content_generation (id, value) VALUES (1, 0)")
    # Only SQLite caches reads per database change (`PRAGMA data_version`).
    if op.get_bind().dialect.name == "sqlite":
        for name, body in _triggers():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _ in _triggers():
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("content_generation")
