"""identity, access, locks and network rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 11:08:26.367630
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=320), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("algorithm", sa.String(length=16), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "admin_passwords",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id", "name"),
    )
    op.create_table(
        "identity_secrets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("identity_id", sa.String(length=36), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identity_secrets", schema=None) as batch_op:
        batch_op.create_index("ix_identity_secrets_identity", ["identity_id"], unique=False)

    op.create_table(
        "login_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("identity", sa.String(length=255), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("caller_ip", sa.String(length=64), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("login_events", schema=None) as batch_op:
        batch_op.create_index("ix_login_events_time", ["registry_id", "time"], unique=False)

    op.create_table(
        "network_rules",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=8), server_default="Allow", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id", "cidr"),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("jti"),
    )
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_refresh_tokens_subject", ["registry_id", "subject"], unique=False)

    op.create_table(
        "role_assignments",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("identity_id", sa.String(length=36), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=128), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["identity_id"], ["identities.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_role_assignments_identity", ["identity_id", "registry_id"], unique=False
        )

    op.create_table(
        "scope_maps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actions", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registry_id", "name", name="uq_scope_maps_registry_name"),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scope_map_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["scope_map_id"], ["scope_maps.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registry_id", "name", name="uq_tokens_registry_name"),
    )
    op.create_table(
        "token_passwords",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("hash", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id", "name"),
    )
    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("config_media_type", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("architecture", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("os", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("image_size", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("write_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("delete_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("read_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("list_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )

    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("admin_user_enabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "anonymous_pull_enabled", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "public_network_access", sa.Boolean(), server_default=sa.true(), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column(
                "network_default_action",
                sa.String(length=8),
                server_default="Allow",
                nullable=False,
            )
        )

    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("write_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("delete_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("read_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("list_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )

    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("write_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("delete_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("read_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("list_enabled", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.drop_column("list_enabled")
        batch_op.drop_column("read_enabled")
        batch_op.drop_column("delete_enabled")
        batch_op.drop_column("write_enabled")

    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_column("list_enabled")
        batch_op.drop_column("read_enabled")
        batch_op.drop_column("delete_enabled")
        batch_op.drop_column("write_enabled")

    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_column("network_default_action")
        batch_op.drop_column("public_network_access")
        batch_op.drop_column("anonymous_pull_enabled")
        batch_op.drop_column("admin_user_enabled")

    with op.batch_alter_table("manifests", schema=None) as batch_op:
        batch_op.drop_column("list_enabled")
        batch_op.drop_column("read_enabled")
        batch_op.drop_column("delete_enabled")
        batch_op.drop_column("write_enabled")
        batch_op.drop_column("updated_at")
        batch_op.drop_column("image_size")
        batch_op.drop_column("os")
        batch_op.drop_column("architecture")
        batch_op.drop_column("config_media_type")

    op.drop_table("token_passwords")
    op.drop_table("tokens")
    op.drop_table("scope_maps")
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_role_assignments_identity")

    op.drop_table("role_assignments")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_refresh_tokens_subject")

    op.drop_table("refresh_tokens")
    op.drop_table("network_rules")
    with op.batch_alter_table("login_events", schema=None) as batch_op:
        batch_op.drop_index("ix_login_events_time")

    op.drop_table("login_events")
    with op.batch_alter_table("identity_secrets", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_secrets_identity")

    op.drop_table("identity_secrets")
    op.drop_table("admin_passwords")
    op.drop_table("signing_keys")
    op.drop_table("login_failures")
    op.drop_table("identities")
