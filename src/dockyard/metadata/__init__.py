"""Metadata: SQLAlchemy tables, queries and Alembic migrations. The only package that
speaks SQL; everything above it calls `Metadata` methods with plain values."""
