"""image lifecycle: retention and soft delete policies, manifests.untagged_at, the
recycle bin, scheduled purges

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 15:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("retention_days", sa.Integer(), server_default="7", nullable=False)
        )
        batch_op.add_column(
            sa.Column("retention_enabled_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("soft_delete_days", sa.Integer(), server_default="7", nullable=False)
        )
        batch_op.add_column(
            sa.Column("soft_delete_enabled_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("untagged_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_manifests_untagged_at", ["untagged_at"], unique=False)
    op.create_table(
        "deleted_manifests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("media_type", sa.String(length=255), nullable=False),
        sa.Column("artifact_type", sa.String(length=255), nullable=True),
        sa.Column("subject_digest", sa.String(length=150), nullable=True),
        sa.Column("annotations", sa.Text(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("config_media_type", sa.String(length=255), nullable=True),
        sa.Column("architecture", sa.String(length=32), nullable=True),
        sa.Column("os", sa.String(length=32), nullable=True),
        sa.Column("image_size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "registry_id", "repository", "digest", name="uq_deleted_manifests_repository_digest"
        ),
    )
    op.create_index(
        "ix_deleted_manifests_deleted_at", "deleted_manifests", ["deleted_at"], unique=False
    )
    op.create_table(
        "deleted_manifest_references",
        sa.Column("deleted_manifest_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("is_manifest", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deleted_manifest_id"], ["deleted_manifests.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("deleted_manifest_id", "digest"),
    )
    op.create_index(
        "ix_deleted_manifest_references_digest",
        "deleted_manifest_references",
        ["digest"],
        unique=False,
    )
    op.create_table(
        "deleted_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_deleted_tags_repository",
        "deleted_tags",
        ["registry_id", "repository", "name"],
        unique=False,
    )
    op.create_index("ix_deleted_tags_deleted_at", "deleted_tags", ["deleted_at"], unique=False)
    op.create_table(
        "purge_schedules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("cron", sa.String(length=128), nullable=False),
        sa.Column("filters", sa.Text(), nullable=False),
        sa.Column("ago_seconds", sa.Integer(), nullable=False),
        sa.Column("untagged", sa.Boolean(), nullable=False),
        sa.Column("untagged_only", sa.Boolean(), nullable=False),
        sa.Column("keep", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_result", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registry_id", "name", name="uq_purge_schedules_registry_name"),
    )


def downgrade() -> None:
    op.drop_table("purge_schedules")
    op.drop_index("ix_deleted_tags_deleted_at", table_name="deleted_tags")
    op.drop_index("ix_deleted_tags_repository", table_name="deleted_tags")
    op.drop_table("deleted_tags")
    op.drop_index("ix_deleted_manifest_references_digest", table_name="deleted_manifest_references")
    op.drop_table("deleted_manifest_references")
    op.drop_index("ix_deleted_manifests_deleted_at", table_name="deleted_manifests")
    op.drop_table("deleted_manifests")
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_index("ix_manifests_untagged_at")
        batch_op.drop_column("untagged_at")
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_column("soft_delete_enabled_at")
        batch_op.drop_column("soft_delete_days")
        batch_op.drop_column("retention_enabled_at")
        batch_op.drop_column("retention_days")
