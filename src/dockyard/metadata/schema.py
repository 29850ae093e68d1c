"""The tables. Alembic migrations in `migrations/versions` create and change them; a change
here without a migration is a bug (tests compare the two)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator):
    """Timestamps in UTC, timezone-aware on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("login_server", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_repositories_registry_name"),
)

# One row per blob stored in a registry: the bytes live in the registry's blob store.
blobs = Table(
    "blobs",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(150), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# A repository sees a blob only through a link row.
blob_links = Table(
    "blob_links",
    metadata,
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(150), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False),
    Column("digest", String(150), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", String(150)),
    Column("annotations", Text),
    Column("size", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
)

# What a manifest points at: blobs (config, layers) and child manifests (index entries).
manifest_references = Table(
    "manifest_references",
    metadata,
    Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(150), primary_key=True),
    Column("is_manifest", Integer, nullable=False),
    Index("ix_manifest_references_digest", "digest"),
)

tags = Table(
    "tags",
    metadata,
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("digest", String(150), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_tags_digest", "repository_id", "digest"),
)

uploads = Table(
    "uploads",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_uploads_updated_at", "updated_at"),
)

# The outbox: every change others care about, written in the transaction that makes it.
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(32), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("payload", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)
