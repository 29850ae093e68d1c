"""The `Metadata` contract: what every database must do for the registry.

Every test runs once per database in `conftest.METADATA_DATABASES`, on a schema built by
the real Alembic migrations (once per session and kind of database, then copied; the
migrations' own tests start from an empty database). Tests call `Metadata` and
`Transaction` methods; they read tables directly only where no method exposes the rows
yet (the outbox, manifest references).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Index, MetaData, create_engine, inspect, select
from sqlalchemy.exc import IntegrityError

from dockyard.metadata import migrate
from dockyard.metadata import schema as t
from dockyard.metadata.attributes import (
    Attributes,
    AttributeWrites,
    ChildManifest,
    ContentLocks,
    ManifestAttributes,
    Order,
    RepositoryLocks,
    TagAttributes,
)
from dockyard.metadata.garbage import GarbageWrites, LinkKey, garbage
from dockyard.metadata.records import (
    LinkedBlob,
    Locks,
    ManifestContent,
    ManifestRecord,
    ReadFlags,
    ReferrerRecord,
    RegistryRecord,
)
from dockyard.metadata.store import Metadata

if TYPE_CHECKING:
    from fake_clock import FakeClock

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64
D512 = "sha512:" + "5" * 128
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
READABLE = ReadFlags(repository=True, tag=True, manifest=True)


def make_registry(meta: Metadata, name: str = "contoso") -> RegistryRecord:
    with meta.transaction() as tx:
        return tx.create_registry(name, f"{name}.registry.example")


def make_repo(meta: Metadata, registry: RegistryRecord, name: str = "library/app") -> int:
    with meta.transaction() as tx:
        return tx.ensure_repository(registry.id, name)


def content(
    digest: str,
    body: bytes = b'{"schemaVersion":2}',
    *,
    media_type: str = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: str | None = None,
    annotations: str | None = None,
    blobs: tuple[str, ...] = (),
    children: tuple[str, ...] = (),
) -> ManifestContent:
    return ManifestContent(
        digest=digest,
        media_type=media_type,
        body=body,
        artifact_type=artifact_type,
        subject_digest=subject,
        annotations=annotations,
        blob_digests=blobs,
        child_digests=children,
    )


def references_of(meta: Metadata, repo_id: int, digest: str) -> set[tuple[str, int]]:
    r, m = t.manifest_references, t.manifests
    query = (
        select(r.c.digest, r.c.is_manifest)
        .select_from(r.join(m, m.c.id == r.c.manifest_id))
        .where(m.c.repository_id == repo_id, m.c.digest == digest)
    )
    with meta.engine.connect() as conn:
        return {(row.digest, row.is_manifest) for row in conn.execute(query)}


def all_references(meta: Metadata) -> list[tuple[int, str]]:
    r = t.manifest_references
    with meta.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(r.c.manifest_id, r.c.digest))]


def events(meta: Metadata) -> list[dict]:
    e = t.events
    with meta.engine.connect() as conn:
        rows = conn.execute(
            select(e.c.registry_id, e.c.action, e.c.repository, e.c.payload).order_by(e.c.id)
        )
        return [
            {
                "registry_id": row.registry_id,
                "action": row.action,
                "repository": row.repository,
                "payload": orjson.loads(row.payload),
            }
            for row in rows
        ]


def same_instant(stored: datetime, expected: datetime) -> bool:
    """Timestamps round-trip as the aware instants the clock gave."""
    return stored.tzinfo is not None and stored == expected


# -- the schema ----------------------------------------------------------------------------


def test_migrations_build_exactly_the_declared_schema(meta: Metadata) -> None:
    with meta.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diffs = compare_metadata(context, t.metadata)
    assert diffs == []
    tables = set(inspect(meta.engine).get_table_names())
    assert set(t.metadata.tables) <= tables


def test_schema_comparison_notices_a_missing_index(meta: Metadata) -> None:
    """The comparison above can fail: a schema with one more index than the database."""
    changed = MetaData()
    for table in t.metadata.sorted_tables:
        table.to_metadata(changed)
    Index("ix_extra_probe", changed.tables["tags"].c.updated_at)
    with meta.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), changed)
    assert [d[0] for d in diffs] == ["add_index"]


def test_migration_revision_is_head_and_upgrade_is_idempotent(meta: Metadata) -> None:
    assert migrate.head_revision() is not None
    assert migrate.current_revision(meta.engine) == migrate.head_revision()
    assert migrate.is_current(meta.engine)
    migrate.upgrade(meta.engine)
    assert migrate.is_current(meta.engine)


def test_fresh_database_is_not_current(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        assert migrate.current_revision(engine) is None
        assert not migrate.is_current(engine)
    finally:
        engine.dispose()


# -- registries --------------------------------------------------------------------------


def test_ping(meta: Metadata) -> None:
    meta.ping()


def test_registries_start_empty_and_list_created_ones(meta: Metadata) -> None:
    assert meta.registries() == []
    a = make_registry(meta, "contoso")
    b = make_registry(meta, "fabrikam")
    assert a == RegistryRecord(a.id, "contoso", "contoso.registry.example")
    assert a.id != b.id
    assert sorted(meta.registries(), key=lambda r: r.name) == [a, b]


def test_registry_names_and_login_servers_are_unique(meta: Metadata) -> None:
    make_registry(meta, "contoso")
    with pytest.raises(IntegrityError), meta.transaction() as tx:
        tx.create_registry("contoso", "other.registry.example")
    with pytest.raises(IntegrityError), meta.transaction() as tx:
        tx.create_registry("other", "contoso.registry.example")
    assert [r.name for r in meta.registries()] == ["contoso"]


# -- repositories ------------------------------------------------------------------------


def test_ensure_repository_is_idempotent(meta: Metadata) -> None:
    reg = make_registry(meta)
    assert not meta.repository_exists(reg.id, "library/app")
    first = make_repo(meta, reg, "library/app")
    assert make_repo(meta, reg, "library/app") == first
    assert meta.repository_exists(reg.id, "library/app")
    with meta.transaction() as tx:
        assert tx.repository_id(reg.id, "library/app") == first
        assert tx.repository_id(reg.id, "library/other") is None
    assert meta.repositories(reg.id, None, 10) == ["library/app"]


def repository_times(meta: Metadata, repo_id: int) -> tuple[datetime, datetime]:
    r = t.repositories
    with meta.engine.connect() as conn:
        row = conn.execute(select(r.c.created_at, r.c.updated_at).where(r.c.id == repo_id)).one()
    return row.created_at, row.updated_at


def test_ensure_repository_touches_only_when_asked(meta: Metadata, clock: FakeClock) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    created, updated = repository_times(meta, repo)
    assert updated == created
    clock.advance(timedelta(minutes=1))
    assert make_repo(meta, reg) == repo  # a blob upload: no content change
    assert repository_times(meta, repo) == (created, updated)
    clock.advance(timedelta(minutes=1))
    with meta.transaction() as tx:
        assert tx.ensure_repository(reg.id, "library/app", touch=True) == repo
    created_after, updated_after = repository_times(meta, repo)
    assert created_after == created
    assert updated_after - created == timedelta(minutes=2)


def test_repositories_are_per_registry(meta: Metadata) -> None:
    a = make_registry(meta, "contoso")
    b = make_registry(meta, "fabrikam")
    in_a = make_repo(meta, a, "app")
    in_b = make_repo(meta, b, "app")
    assert in_a != in_b
    make_repo(meta, b, "only-in-b")
    assert not meta.repository_exists(a.id, "only-in-b")
    assert meta.repositories(a.id, None, 10) == ["app"]
    assert meta.repositories(b.id, None, 10) == ["app", "only-in-b"]


# -- blobs and links -----------------------------------------------------------------------


def test_add_blob_is_idempotent_and_keeps_the_first_size(meta: Metadata) -> None:
    reg = make_registry(meta)
    assert meta.blob_size(reg.id, D1) is None
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 10)
        tx.add_blob(reg.id, D1, 10)
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 99)
    assert meta.blob_size(reg.id, D1) == 10


def test_linked_blob_needs_both_the_link_and_the_blob(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.link_blob(repo, D1)  # a link whose blob row is missing
        tx.add_blob(reg.id, D2, 20)  # a blob nobody links
    assert meta.linked_blob(reg.id, "library/app", D1) is None
    assert meta.linked_blob(reg.id, "library/app", D2) is None
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 10)
        tx.link_blob(repo, D1)  # again: idempotent
    assert meta.linked_blob(reg.id, "library/app", D1) == LinkedBlob(10, readable=True)


def test_unlink_blob(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 10)
        tx.link_blob(repo, D1)
    with meta.transaction() as tx:
        assert tx.unlink_blob(repo, D1) is True
        assert tx.unlink_blob(repo, D1) is False
        assert tx.unlink_blob(repo, D2) is False
    assert meta.linked_blob(reg.id, "library/app", D1) is None
    # The blob itself stays until garbage collection.
    assert meta.blob_size(reg.id, D1) == 10


def test_links_are_per_repository(meta: Metadata) -> None:
    reg = make_registry(meta)
    a = make_repo(meta, reg, "a")
    make_repo(meta, reg, "b")
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 10)
        tx.link_blob(a, D1)
    assert meta.linked_blob(reg.id, "a", D1) == LinkedBlob(10, readable=True)
    assert meta.linked_blob(reg.id, "b", D1) is None
    assert meta.linked_blob(reg.id, "missing", D1) is None


def test_links_and_blobs_are_per_registry(meta: Metadata) -> None:
    a = make_registry(meta, "contoso")
    b = make_registry(meta, "fabrikam")
    in_a = make_repo(meta, a, "app")
    in_b = make_repo(meta, b, "app")
    with meta.transaction() as tx:
        tx.add_blob(a.id, D1, 10)  # only registry a stores D1 ...
        tx.link_blob(in_a, D1)
        tx.link_blob(in_b, D1)  # ... so b's link must not reach a's blob
    assert meta.blob_size(b.id, D1) is None
    assert meta.linked_blob(a.id, "app", D1) == LinkedBlob(10, readable=True)
    assert meta.linked_blob(b.id, "app", D1) is None
    with meta.transaction() as tx:
        assert tx.linked_blob_sizes(in_b, [D1]) == {}
        assert tx.linked_blob_sizes(in_a, [D1]) == {D1: 10}


def test_linked_blob_sizes(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    other = make_repo(meta, reg, "other")
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 10)
        tx.add_blob(reg.id, D2, 20)
        tx.add_blob(reg.id, D3, 30)
        tx.link_blob(repo, D1)
        tx.link_blob(repo, D2)
        tx.link_blob(other, D3)
        tx.link_blob(repo, D4)  # linked, but no blob row
        # A transaction sees its own writes.
        assert tx.linked_blob_sizes(repo, [D1, D2, D3, D4, D1]) == {D1: 10, D2: 20}
    with meta.transaction() as tx:
        assert tx.linked_blob_sizes(repo, iter([D2])) == {D2: 20}
        assert tx.linked_blob_sizes(repo, []) == {}


# -- manifests -----------------------------------------------------------------------------


def test_put_manifest_stores_it_once(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    body = b'{"schemaVersion":2,"mediaType":"x"}'
    with meta.transaction() as tx:
        assert tx.put_manifest(repo, content(D1, body)) is True
        assert tx.put_manifest(repo, content(D1, b"{}")) is False
    with meta.transaction() as tx:
        assert tx.put_manifest(repo, content(D1, b"{}", media_type=OCI_INDEX)) is False
    assert meta.manifest_by_digest(reg.id, "library/app", D1) == ManifestRecord(
        D1, OCI_MANIFEST, len(body), body, READABLE
    )


def test_manifest_by_digest_is_per_repository_and_registry(meta: Metadata) -> None:
    a = make_registry(meta, "contoso")
    b = make_registry(meta, "fabrikam")
    repo = make_repo(meta, a, "app")
    make_repo(meta, a, "other")
    make_repo(meta, b, "app")
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
    assert meta.manifest_by_digest(a.id, "app", D1) is not None
    assert meta.manifest_by_digest(a.id, "app", D2) is None
    assert meta.manifest_by_digest(a.id, "other", D1) is None
    assert meta.manifest_by_digest(b.id, "app", D1) is None
    assert meta.manifest_by_digest(a.id, "missing", D1) is None


def test_manifest_by_tag(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    other = make_repo(meta, reg, "other")
    body = b'{"manifests":[]}'
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1, body, media_type=OCI_INDEX))
        tx.set_tag(repo, "v1", D1)
        tx.set_tag(other, "v1", D1)  # the tag of a repository without that manifest
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") == ManifestRecord(
        D1, OCI_INDEX, len(body), body, READABLE
    )
    assert meta.manifest_by_tag(reg.id, "library/app", "v2") is None
    assert meta.manifest_by_tag(reg.id, "other", "v1") is None
    assert meta.manifest_by_tag(reg.id, "missing", "v1") is None


def test_manifest_with_sha512_digest(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D512))
        tx.set_tag(repo, "long", D512)
    assert meta.manifest_by_digest(reg.id, "library/app", D512).digest == D512
    assert meta.manifest_by_tag(reg.id, "library/app", "long").digest == D512


def test_manifest_references_rows(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        # A layer listed twice (allowed in an image) is one reference.
        tx.put_manifest(repo, content(D1, blobs=(D2, D3, D3)))
        tx.put_manifest(repo, content(D4, media_type=OCI_INDEX, children=(D1,)))
        tx.put_manifest(repo, content(D512))
    assert references_of(meta, repo, D1) == {(D2, 0), (D3, 0)}
    assert references_of(meta, repo, D4) == {(D1, 1)}
    assert references_of(meta, repo, D512) == set()


def test_manifest_sizes(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    other = make_repo(meta, reg, "other")
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1, b"12345"))
        tx.put_manifest(other, content(D2, b"123"))
        assert tx.manifest_sizes(repo, [D1, D2, D3, D1]) == {D1: 5}
        assert tx.manifest_sizes(other, iter([D2])) == {D2: 3}
        assert tx.manifest_sizes(repo, []) == {}


def test_delete_manifest_returns_the_tags_it_removed(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1, blobs=(D3,)))
        tx.put_manifest(repo, content(D2))
        tx.set_tag(repo, "v1", D1)
        tx.set_tag(repo, "latest", D1)
        tx.set_tag(repo, "v2", D2)
    with meta.transaction() as tx:
        assert sorted(tx.delete_manifest(repo, D1)) == ["latest", "v1"]
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    assert meta.tags(reg.id, "library/app", None, 10) == ["v2"]
    assert references_of(meta, repo, D1) == set()
    assert all_references(meta) == []
    with meta.transaction() as tx:
        assert tx.delete_manifest(repo, D2) == ["v2"]
        assert tx.delete_manifest(repo, D2) is None
        assert tx.delete_manifest(repo, D4) is None


def test_delete_manifest_without_tags(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
    with meta.transaction() as tx:
        assert tx.delete_manifest(repo, D1) == []
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None


def test_delete_manifest_leaves_other_repositories_alone(meta: Metadata) -> None:
    reg = make_registry(meta)
    a = make_repo(meta, reg, "a")
    b = make_repo(meta, reg, "b")
    with meta.transaction() as tx:
        for repo in (a, b):
            tx.put_manifest(repo, content(D1, blobs=(D2,)))
            tx.set_tag(repo, "v1", D1)
    with meta.transaction() as tx:
        assert tx.delete_manifest(a, D1) == ["v1"]
    assert meta.manifest_by_tag(reg.id, "b", "v1") is not None
    assert references_of(meta, b, D1) == {(D2, 0)}


def test_manifest_can_be_pushed_again_after_delete(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1, blobs=(D2,)))
    with meta.transaction() as tx:
        tx.delete_manifest(repo, D1)
    with meta.transaction() as tx:
        assert tx.put_manifest(repo, content(D1, blobs=(D3,))) is True
    assert references_of(meta, repo, D1) == {(D3, 0)}


# -- tags ------------------------------------------------------------------------------------


def test_set_tag_returns_the_previous_digest(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.put_manifest(repo, content(D2))
        assert tx.set_tag(repo, "latest", D1) is None
        assert tx.set_tag(repo, "latest", D1) == D1
    assert meta.manifest_by_tag(reg.id, "library/app", "latest").digest == D1
    with meta.transaction() as tx:
        assert tx.set_tag(repo, "latest", D2) == D1
    assert meta.manifest_by_tag(reg.id, "library/app", "latest").digest == D2
    assert meta.tags(reg.id, "library/app", None, 10) == ["latest"]


def test_delete_tag(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.set_tag(repo, "v1", D1)
        tx.set_tag(repo, "v2", D1)
    with meta.transaction() as tx:
        assert tx.delete_tag(repo, "v1") == D1
        assert tx.delete_tag(repo, "v1") is None
        assert tx.delete_tag(repo, "never") is None
    assert meta.tags(reg.id, "library/app", None, 10) == ["v2"]
    # The manifest stays: untagging is not deleting.
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is not None


# -- listings --------------------------------------------------------------------------------

TAGS = ["v1.0", "latest", "v1.1", "alpha", "v2", "beta", "v10"]


def test_tags_of_unknown_repository_is_none(meta: Metadata) -> None:
    reg = make_registry(meta)
    assert meta.tags(reg.id, "missing", None, 10) is None
    make_repo(meta, reg)
    assert meta.tags(reg.id, "library/app", None, 10) == []


def test_tags_are_listed_in_order_with_keyset_pages(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        for tag in TAGS:
            tx.set_tag(repo, tag, D1)
    ordered = sorted(TAGS)
    assert meta.tags(reg.id, "library/app", None, 100) == ordered
    pages, last = [], None
    for _ in range(len(TAGS) + 1):  # bounded: a broken `last` must fail, not loop
        page = meta.tags(reg.id, "library/app", last, 3)
        assert len(page) <= 3
        if not page:
            break
        pages.append(page)
        last = page[-1]
    assert pages == [ordered[0:3], ordered[3:6], ordered[6:]]
    assert meta.tags(reg.id, "library/app", "beta", 2) == ["latest", "v1.0"]
    # `last` need not be an existing tag.
    assert meta.tags(reg.id, "library/app", "m", 100) == ["v1.0", "v1.1", "v10", "v2"]
    assert meta.tags(reg.id, "library/app", "zzz", 100) == []
    assert meta.tags(reg.id, "library/app", None, 0) == []


def test_tags_are_ordered_by_code_point(meta: Metadata) -> None:
    """Lexical order as the spec's clients expect (byte order), whatever the collation."""
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    tags = ["b", "B", "a_1", "a-1", "a.1", "a", "A", "_x", "1"]
    with meta.transaction() as tx:
        for tag in tags:
            tx.set_tag(repo, tag, D1)
    assert meta.tags(reg.id, "library/app", None, 100) == sorted(tags)
    assert meta.tags(reg.id, "library/app", "B", 100) == ["_x", "a", "a-1", "a.1", "a_1", "b"]


def test_tags_are_per_repository(meta: Metadata) -> None:
    a = make_registry(meta, "contoso")
    b = make_registry(meta, "fabrikam")
    in_a = make_repo(meta, a, "app")
    other = make_repo(meta, a, "other")
    in_b = make_repo(meta, b, "app")
    with meta.transaction() as tx:
        tx.set_tag(in_a, "a-tag", D1)
        tx.set_tag(other, "other-tag", D1)
        tx.set_tag(in_b, "b-tag", D1)
    assert meta.tags(a.id, "app", None, 10) == ["a-tag"]
    assert meta.tags(b.id, "app", None, 10) == ["b-tag"]


def test_repositories_are_listed_in_order_with_keyset_pages(meta: Metadata) -> None:
    reg = make_registry(meta)
    other = make_registry(meta, "fabrikam")
    names = ["zeta", "library/b", "library/a", "alpha", "library/a/sub", "mid"]
    for name in names:
        make_repo(meta, reg, name)
    make_repo(meta, other, "not-mine")
    ordered = sorted(names)
    assert meta.repositories(reg.id, None, 100) == ordered
    assert meta.repositories(reg.id, None, 2) == ordered[:2]
    assert meta.repositories(reg.id, ordered[1], 2) == ordered[2:4]
    assert meta.repositories(reg.id, ordered[3], 10) == ordered[4:]
    assert meta.repositories(reg.id, "library/a", 1) == ["library/a/sub"]
    assert meta.repositories(reg.id, ordered[-1], 10) == []
    assert meta.repositories(other.id, None, 10) == ["not-mine"]


# -- referrers ---------------------------------------------------------------------------------


def test_referrers_with_and_without_artifact_type(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    other = make_repo(meta, reg, "other")
    sbom_body = b'{"artifactType":"application/spdx+json"}'
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.put_manifest(
            repo,
            content(D3, sbom_body, artifact_type=SBOM, subject=D1, annotations='{"k":"v"}'),
        )
        tx.put_manifest(repo, content(D2, b"sig", artifact_type=SIGNATURE, subject=D1))
        tx.put_manifest(repo, content(D4, b"unrelated", artifact_type=SBOM, subject=D2))
        tx.put_manifest(other, content(D512, artifact_type=SBOM, subject=D1))
    assert meta.referrers(reg.id, "library/app", D1, None) == [
        ReferrerRecord(D2, OCI_MANIFEST, 3, SIGNATURE, None),
        ReferrerRecord(D3, OCI_MANIFEST, len(sbom_body), SBOM, '{"k":"v"}'),
    ]
    assert meta.referrers(reg.id, "library/app", D1, SBOM) == [
        ReferrerRecord(D3, OCI_MANIFEST, len(sbom_body), SBOM, '{"k":"v"}'),
    ]
    assert meta.referrers(reg.id, "library/app", D1, "application/unknown") == []
    assert [r.digest for r in meta.referrers(reg.id, "library/app", D2, None)] == [D4]
    assert meta.referrers(reg.id, "library/app", D4, None) == []
    assert [r.digest for r in meta.referrers(reg.id, "other", D1, None)] == [D512]
    assert meta.referrers(reg.id, "missing", D1, None) == []


def test_referrers_of_a_missing_subject_are_listed(meta: Metadata) -> None:
    """A referrer may be pushed before its subject (the spec allows it)."""
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D2, artifact_type=SBOM, subject=D1))
    assert [r.digest for r in meta.referrers(reg.id, "library/app", D1, None)] == [D2]


# -- uploads -----------------------------------------------------------------------------------


def test_upload_records(meta: Metadata) -> None:
    reg = make_registry(meta)
    assert meta.upload("u1") is None
    with meta.transaction() as tx:
        tx.create_upload("u1", reg.id, "library/app")
    record = meta.upload("u1")
    assert (record.id, record.registry_id, record.repository, record.size) == (
        "u1",
        reg.id,
        "library/app",
        0,
    )
    assert record.created_at == record.updated_at
    with meta.transaction() as tx:
        tx.set_upload_size("u1", 1234)
    assert meta.upload("u1").size == 1234
    assert meta.upload_ids() == {"u1"}


def test_upload_timestamps_are_the_clock_instants(
    meta: Metadata,
    clock: FakeClock,
    request: pytest.FixtureRequest,
) -> None:
    reg = make_registry(meta)
    created = clock()
    with meta.transaction() as tx:
        tx.create_upload("u1", reg.id, "library/app")
    updated = clock.advance(timedelta(minutes=5))
    with meta.transaction() as tx:
        tx.set_upload_size("u1", 7)
    record = meta.upload("u1")
    assert same_instant(record.created_at, created)
    assert same_instant(record.updated_at, updated)


def test_upload_updated_at_moves_with_the_clock(meta: Metadata, clock: FakeClock) -> None:
    reg = make_registry(meta)
    with meta.transaction() as tx:
        tx.create_upload("u1", reg.id, "library/app")
    clock.advance(timedelta(minutes=5))
    with meta.transaction() as tx:
        tx.set_upload_size("u1", 7)
    record = meta.upload("u1")
    assert record.updated_at - record.created_at == timedelta(minutes=5)


def test_uploads_idle_since(meta: Metadata, clock: FakeClock) -> None:
    reg = make_registry(meta)
    start = clock()
    with meta.transaction() as tx:
        tx.create_upload("old", reg.id, "library/app")
        tx.create_upload("touched", reg.id, "library/app")
    clock.advance(timedelta(hours=1))
    with meta.transaction() as tx:
        tx.create_upload("new", reg.id, "library/app")
        tx.set_upload_size("touched", 5)
    assert meta.uploads_idle_since(start) == []  # strictly before
    idle = meta.uploads_idle_since(start + timedelta(minutes=1))
    assert [upload.id for upload in idle] == ["old"]
    assert (idle[0].registry_id, idle[0].repository, idle[0].digest) == (
        reg.id,
        "library/app",
        None,
    )
    everything = meta.uploads_idle_since(clock() + timedelta(seconds=1))
    assert sorted(upload.id for upload in everything) == ["new", "old", "touched"]


def test_an_upload_records_the_digest_it_publishes(meta: Metadata, clock: FakeClock) -> None:
    reg = make_registry(meta)
    with meta.transaction() as tx:
        tx.create_upload("chunked", reg.id, "library/app")
        tx.create_upload("whole", reg.id, "library/app", D2)
    clock.advance(timedelta(minutes=3))
    with meta.transaction() as tx:
        assert tx.set_upload_digest("chunked", D1) is True
        assert tx.set_upload_digest("never", D1) is False
    chunked = meta.upload("chunked")
    assert chunked is not None and chunked.digest == D1
    assert chunked.updated_at - chunked.created_at == timedelta(minutes=3)  # activity
    whole = meta.upload("whole")
    assert whole is not None and whole.digest == D2


def test_delete_upload(meta: Metadata) -> None:
    reg = make_registry(meta)
    with meta.transaction() as tx:
        tx.create_upload("u1", reg.id, "library/app")
        tx.create_upload("u2", reg.id, "library/app")
    with meta.transaction() as tx:
        assert tx.delete_upload("u1") is True
        assert tx.delete_upload("u1") is False
        assert tx.delete_upload("never") is False
    assert meta.upload("u1") is None
    assert meta.upload_ids() == {"u2"}


def test_upload_ids_are_unique(meta: Metadata) -> None:
    reg = make_registry(meta)
    with meta.transaction() as tx:
        tx.create_upload("u1", reg.id, "library/app")
    with pytest.raises(IntegrityError), meta.transaction() as tx:
        tx.create_upload("u1", reg.id, "library/other")
    assert meta.upload("u1").repository == "library/app"


# -- transactions and the outbox ---------------------------------------------------------------


def test_transaction_now_is_the_clock(meta: Metadata, clock: FakeClock) -> None:
    with meta.transaction() as tx:
        assert tx.now == clock()
    later = clock.advance(timedelta(days=1))
    with meta.transaction() as tx:
        assert tx.now == later


def test_emit_writes_an_outbox_row(meta: Metadata) -> None:
    reg = make_registry(meta)
    payload = {"repository": "library/app", "digest": D1, "tags": ["v1", "latest"], "n": 3}
    with meta.transaction() as tx:
        tx.emit(reg.id, "push", "library/app", payload)
        tx.emit(reg.id, "delete", "library/app", {"digest": D1})
    assert events(meta) == [
        {"registry_id": reg.id, "action": "push", "repository": "library/app", "payload": payload},
        {
            "registry_id": reg.id,
            "action": "delete",
            "repository": "library/app",
            "payload": {"digest": D1},
        },
    ]


def test_rollback_on_exception_leaves_nothing(meta: Metadata) -> None:
    reg = make_registry(meta)

    class Boom(Exception):
        pass

    with pytest.raises(Boom), meta.transaction() as tx:
        repo = tx.ensure_repository(reg.id, "library/app")
        tx.add_blob(reg.id, D2, 20)
        tx.link_blob(repo, D2)
        tx.put_manifest(repo, content(D1, blobs=(D2,)))
        tx.set_tag(repo, "v1", D1)
        tx.create_upload("u1", reg.id, "library/app")
        tx.emit(reg.id, "push", "library/app", {"digest": D1})
        tx.create_registry("second", "second.registry.example")
        raise Boom
    assert not meta.repository_exists(reg.id, "library/app")
    assert meta.repositories(reg.id, None, 10) == []
    assert meta.blob_size(reg.id, D2) is None
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
    assert meta.tags(reg.id, "library/app", None, 10) is None
    assert meta.upload("u1") is None
    assert meta.upload_ids() == set()
    assert events(meta) == []
    assert all_references(meta) == []
    assert meta.registries() == [reg]
    # The database is still usable afterwards.
    assert make_repo(meta, reg) > 0


def test_rollback_keeps_what_was_there_before(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.put_manifest(repo, content(D2))
        tx.set_tag(repo, "latest", D1)
    with pytest.raises(RuntimeError), meta.transaction() as tx:
        tx.set_tag(repo, "latest", D2)
        tx.delete_manifest(repo, D1)
        raise RuntimeError("abandon")
    assert meta.manifest_by_tag(reg.id, "library/app", "latest").digest == D1
    assert meta.manifest_by_digest(reg.id, "library/app", D2) is not None


def test_concurrent_writers_of_the_same_rows_all_succeed(meta: Metadata) -> None:
    """Pushes racing on one repository, manifest and tag (threads here, nodes in a
    deployment) each commit: none fails on a duplicate key, none sees a half state, and
    each tag move reports the digest it replaced, so the moves form one chain."""
    reg = make_registry(meta)
    digests = ["sha256:" + f"{i:x}" * 64 for i in range(1, 9)]
    start = threading.Barrier(len(digests))

    def push(digest: str) -> tuple[bool, str | None]:
        start.wait(timeout=10)
        with meta.transaction() as tx:
            repo = tx.ensure_repository(reg.id, "race/app", touch=True)
            tx.add_blob(reg.id, D1, 1)
            tx.link_blob(repo, D1)
            shared = tx.put_manifest(repo, content(D2, blobs=(D1,)))
            tx.put_manifest(repo, content(digest))
            return shared, tx.set_tag(repo, "latest", digest)

    with ThreadPoolExecutor(max_workers=len(digests)) as pool:
        results = list(pool.map(push, digests))
    assert sum(shared for shared, _ in results) == 1  # exactly one stored the shared manifest
    previous = [before for _, before in results]
    assert previous.count(None) == 1  # exactly one created the tag
    final = meta.manifest_by_tag(reg.id, "race/app", "latest").digest
    assert sorted([final, *(p for p in previous if p is not None)]) == sorted(digests)
    assert meta.repositories(reg.id, None, 10) == ["race/app"]


def test_uncommitted_writes_are_invisible_to_other_connections(meta: Metadata) -> None:
    """Nothing outside a transaction (another thread, another node) learns about its
    changes until it commits."""
    reg = make_registry(meta)

    def look() -> tuple[bool, ManifestRecord | None, int]:
        return (
            meta.repository_exists(reg.id, "library/app"),
            meta.manifest_by_tag(reg.id, "library/app", "v1"),
            len(events(meta)),
        )

    with ThreadPoolExecutor(max_workers=1) as elsewhere:
        with meta.transaction() as tx:
            repo = tx.ensure_repository(reg.id, "library/app")
            tx.put_manifest(repo, content(D1))
            tx.set_tag(repo, "v1", D1)
            tx.emit(reg.id, "push", "library/app", {})
            assert elsewhere.submit(look).result(timeout=10) == (False, None, 0)
        exists, manifest, n_events = elsewhere.submit(look).result(timeout=10)
    assert exists
    assert manifest is not None and manifest.digest == D1
    assert n_events == 1


# -- reads after writes (whatever a backend caches) ------------------------------------------


def test_reads_see_this_threads_commits(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
    assert meta.tags(reg.id, "library/app", None, 10) == []
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.set_tag(repo, "v1", D1)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1").digest == D1
    assert meta.manifest_by_digest(reg.id, "library/app", D1).digest == D1
    assert meta.tags(reg.id, "library/app", None, 10) == ["v1"]
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D2))
        tx.set_tag(repo, "v1", D2)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1").digest == D2
    with meta.transaction() as tx:
        tx.delete_manifest(repo, D1)
        tx.delete_tag(repo, "v1")
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
    assert meta.tags(reg.id, "library/app", None, 10) == []


def test_reads_see_other_threads_commits(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    assert meta.tags(reg.id, "library/app", None, 10) == []

    def push(digest: str) -> None:
        with meta.transaction() as tx:
            tx.put_manifest(repo, content(digest))
            tx.set_tag(repo, "v1", digest)

    with ThreadPoolExecutor(max_workers=1) as elsewhere:
        elsewhere.submit(push, D1).result(timeout=10)
        assert meta.manifest_by_tag(reg.id, "library/app", "v1").digest == D1
        assert meta.tags(reg.id, "library/app", None, 10) == ["v1"]
        elsewhere.submit(push, D2).result(timeout=10)
        assert meta.manifest_by_tag(reg.id, "library/app", "v1").digest == D2


def test_reads_see_another_nodes_commits(
    meta: Metadata, database_url: str, clock: FakeClock
) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
    node = Metadata(database_url, clock)
    try:
        with node.transaction() as tx:
            tx.put_manifest(repo, content(D1))
            tx.set_tag(repo, "v1", D1)
        assert meta.manifest_by_tag(reg.id, "library/app", "v1").digest == D1
        assert meta.manifest_by_digest(reg.id, "library/app", D1).digest == D1
        with node.transaction() as tx:
            tx.delete_manifest(repo, D1)
        assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
        assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    finally:
        node.close()


def test_reads_inside_a_transaction_do_not_outlive_its_commit(
    meta: Metadata, request: pytest.FixtureRequest
) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
        tx.set_tag(repo, "v1", D1)
    found = meta.manifest_by_tag(reg.id, "library/app", "v1")
    assert found is not None and found.digest == D1


def test_reads_inside_a_transaction_do_not_outlive_its_rollback(
    meta: Metadata, request: pytest.FixtureRequest
) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with pytest.raises(RuntimeError), meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.set_tag(repo, "v1", D1)
        meta.manifest_by_tag(reg.id, "library/app", "v1")
        meta.tags(reg.id, "library/app", None, 10)
        raise RuntimeError("abandon")
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is None
    assert meta.tags(reg.id, "library/app", None, 10) == []


# -- locks and /acr/v1 attributes ------------------------------------------------------------


def set_locks(meta: Metadata, repo_id: int, **target: str | bool) -> None:
    """`set_locks(meta, repo, tag="v1", read_enabled=False)`: names of `Locks` fields."""
    where = {k: v for k, v in target.items() if k in ("tag", "digest")}
    changes = {k: v for k, v in target.items() if k not in where}
    with meta.transaction() as tx:
        assert AttributeWrites(tx).set_locks(repo_id, changes, **where)


def tagged_manifest(meta: Metadata, name: str = "library/app") -> tuple[RegistryRecord, int]:
    reg = make_registry(meta)
    repo = make_repo(meta, reg, name)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.set_tag(repo, "v1", D1)
    return reg, repo


@pytest.mark.parametrize(
    ("target", "by_tag", "by_digest"),
    [
        ({}, ReadFlags(False, True, True), ReadFlags(False, True, True)),
        ({"tag": "v1"}, ReadFlags(True, False, True), READABLE),
        ({"digest": D1}, ReadFlags(True, True, False), ReadFlags(True, True, False)),
    ],
)
def test_manifest_reads_carry_read_flags(
    meta: Metadata, target: dict, by_tag: ReadFlags, by_digest: ReadFlags
) -> None:
    reg, repo = tagged_manifest(meta)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1").read == READABLE  # now cached
    set_locks(meta, repo, read_enabled=False, **target)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1").read == by_tag
    assert meta.manifest_by_digest(reg.id, "library/app", D1).read == by_digest
    set_locks(meta, repo, read_enabled=True, **target)
    assert meta.manifest_by_tag(reg.id, "library/app", "v1").read == READABLE


def test_manifest_read_flags_are_seen_by_other_connections(meta: Metadata, database_url: str):
    """Another node's (or worker's) cached pull must see a lock set elsewhere."""
    reg, repo = tagged_manifest(meta)
    other = Metadata(database_url, meta.clock)
    try:
        assert other.manifest_by_tag(reg.id, "library/app", "v1").read == READABLE
        set_locks(meta, repo, tag="v1", read_enabled=False)
        assert other.manifest_by_tag(reg.id, "library/app", "v1").read.tag is False
    finally:
        other.close()


def test_linked_blob_is_unreadable_in_a_read_locked_repository(meta: Metadata) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D1, 10)
        tx.link_blob(repo, D1)
    set_locks(meta, repo, read_enabled=False)
    assert meta.linked_blob(reg.id, "library/app", D1) == LinkedBlob(10, readable=False)


def test_listings_hide_list_locked_tags_and_repositories(meta: Metadata) -> None:
    reg, repo = tagged_manifest(meta)
    hidden = make_repo(meta, reg, "hidden")
    with meta.transaction() as tx:
        tx.set_tag(repo, "v2", D1)
    set_locks(meta, repo, tag="v1", list_enabled=False)
    set_locks(meta, hidden, list_enabled=False)
    assert meta.tags(reg.id, "library/app", None, 10) == ["v2"]
    assert meta.repositories(reg.id, None, 10) == ["library/app"]
    # Hidden is not gone: reads by name still find them.
    assert meta.manifest_by_tag(reg.id, "library/app", "v1") is not None
    assert meta.repository_exists(reg.id, "hidden")
    assert meta.tags(reg.id, "hidden", None, 10) == []


def test_set_locks_changes_only_what_is_given_and_moves_updated_at(
    meta: Metadata, clock: FakeClock
) -> None:
    reg, repo = tagged_manifest(meta)
    attributes = Attributes(meta)
    before = attributes.tag(reg.id, "library/app", "v1")
    assert before.locks == Locks()
    assert same_instant(before.updated_at, clock.now)
    later = clock.advance(timedelta(seconds=5))
    set_locks(meta, repo, tag="v1", write_enabled=False, read_enabled=False)
    after = attributes.tag(reg.id, "library/app", "v1")
    assert after.locks == Locks(write_enabled=False, read_enabled=False)
    assert same_instant(after.updated_at, later) and after.created_at == before.created_at
    set_locks(meta, repo, tag="v1", read_enabled=True)
    assert attributes.tag(reg.id, "library/app", "v1").locks == Locks(write_enabled=False)
    # The manifest and the repository are untouched by a tag's locks.
    assert attributes.manifest(reg.id, "library/app", D1).locks == Locks()
    assert attributes.repository(reg.id, "library/app").locks == Locks()
    with meta.transaction() as tx:
        writes = AttributeWrites(tx)
        assert not writes.set_locks(repo, {"write_enabled": False}, tag="nope")
        assert not writes.set_locks(repo, {"write_enabled": False}, digest=D2)


def test_lock_reads_in_a_transaction(meta: Metadata) -> None:
    reg, repo = tagged_manifest(meta)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D2))
        tx.set_tag(repo, "v2", D2)
        tx.set_tag(repo, "also-v1", D1)
    set_locks(meta, repo, delete_enabled=False)
    set_locks(meta, repo, tag="also-v1", write_enabled=False)
    set_locks(meta, repo, digest=D2, list_enabled=False)
    with meta.transaction() as tx:
        writes = AttributeWrites(tx)
        assert writes.repository_locks(reg.id, "library/app") == RepositoryLocks(
            repo, Locks(delete_enabled=False)
        )
        assert writes.repository_locks(reg.id, "missing") is None
        assert writes.tag_locks(repo, "also-v1") == Locks(write_enabled=False)
        assert writes.tag_locks(repo, "missing") is None
        assert writes.content_locks(repo, D1) == ContentLocks(
            tags={"v1": Locks(), "also-v1": Locks(write_enabled=False)},
            manifests={D1: Locks()},
        )
        assert writes.content_locks(repo, D3) == ContentLocks({}, {})
        everything = writes.content_locks(repo)
        assert set(everything.tags) == {"v1", "v2", "also-v1"}
        assert everything.manifests == {D1: Locks(), D2: Locks(list_enabled=False)}
    assert Attributes(meta).repository_locks(reg.id, "library/app") == RepositoryLocks(
        repo, Locks(delete_enabled=False)
    )


def test_put_manifest_stores_what_acr_shows(meta: Metadata, clock: FakeClock) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    image = ManifestContent(
        digest=D1,
        media_type=OCI_MANIFEST,
        body=b"{}",
        artifact_type=None,
        subject_digest=None,
        annotations=None,
        blob_digests=(D3,),
        child_digests=(),
        config_media_type="application/vnd.oci.image.config.v1+json",
        architecture="arm64",
        os="linux",
        image_size=1234,
    )
    with meta.transaction() as tx:
        tx.put_manifest(repo, image)
        tx.put_manifest(repo, content(D2, media_type=OCI_INDEX, children=(D1, D4)))
        tx.set_tag(repo, "v1", D1)
        assert tx.image_sizes(repo, [D1, D2, D4]) == {D1: 1234, D2: 0}
    found = Attributes(meta).manifest(reg.id, "library/app", D1)
    assert found == ManifestAttributes(
        digest=D1,
        media_type=OCI_MANIFEST,
        config_media_type="application/vnd.oci.image.config.v1+json",
        architecture="arm64",
        os="linux",
        image_size=1234,
        created_at=found.created_at,
        updated_at=found.created_at,
        locks=Locks(),
        tags=("v1",),
        references=(),
    )
    assert same_instant(found.created_at, clock.now)
    index = Attributes(meta).manifest(reg.id, "library/app", D2)
    # A child the repository does not hold is listed without a platform.
    assert index.references == (ChildManifest(D1, "arm64", "linux"), ChildManifest(D4, None, None))
    assert index.architecture is None and index.tags == ()


def test_repository_attributes(meta: Metadata, clock: FakeClock) -> None:
    reg, repo = tagged_manifest(meta)
    attributes = Attributes(meta)
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D2))
        tx.set_tag(repo, "v2", D2)
        tx.set_tag(repo, "v3", D2)
    found = attributes.repository(reg.id, "library/app")
    assert (found.name, found.manifest_count, found.tag_count) == ("library/app", 2, 3)
    assert same_instant(found.created_at, clock.now) and found.locks == Locks()
    make_repo(meta, reg, "empty")
    empty = attributes.repository(reg.id, "empty")
    assert (empty.manifest_count, empty.tag_count) == (0, 0)
    assert attributes.repository(reg.id, "missing") is None
    assert attributes.tag(reg.id, "library/app", "missing") is None
    assert attributes.manifest(reg.id, "library/app", D3) is None


def push_tags_over_time(meta: Metadata, clock: FakeClock, repo: int) -> list[str]:
    """Tags v0..v4 pushed a second apart, then v1 moved last: time order v0 v2 v3 v4 v1;
    v3 and v3b share their instant (ties are broken by name)."""
    with meta.transaction() as tx:
        tx.put_manifest(repo, content(D1))
        tx.put_manifest(repo, content(D2))
    for name in ("v0", "v1", "v2", "v3", "v3b", "v4"):
        if name != "v3b":
            clock.advance(timedelta(seconds=1))
        with meta.transaction() as tx:
            tx.set_tag(repo, name, D1)
    clock.advance(timedelta(seconds=1))
    with meta.transaction() as tx:
        tx.set_tag(repo, "v1", D2)
    return ["v0", "v2", "v3", "v3b", "v4", "v1"]


def walk(fetch, key, size: int, limit: int = 20) -> list[str]:
    """Follow keyset pages of `size` to the end, returning every key seen (bounded, so
    a broken `last` fails instead of looping)."""
    seen: list[str] = []
    last = None
    for _ in range(limit):
        page = fetch(last=last, n=size)
        assert len(page) <= size
        if not page:
            return seen
        seen.extend(key(item) for item in page)
        last = key(page[-1])
    raise AssertionError(f"no end after {limit} pages: {seen}")


@pytest.mark.parametrize("order", list(Order))
def test_tags_pages_in_every_order(meta: Metadata, clock: FakeClock, order: Order) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    by_time = push_tags_over_time(meta, clock, repo)
    expected = {
        Order.NAME: sorted(by_time),
        Order.TIME_ASC: by_time,
        Order.TIME_DESC: ["v1", "v4", "v3", "v3b", "v2", "v0"],
    }[order]
    attributes = Attributes(meta)

    def fetch(last: str | None, n: int) -> list[TagAttributes] | None:
        return attributes.tags(reg.id, "library/app", last=last, n=n, order=order)

    assert [tag.name for tag in fetch(None, 100)] == expected
    assert walk(fetch, lambda tag: tag.name, 4) == expected
    assert walk(fetch, lambda tag: tag.name, 1) == expected


def test_tags_filtered_by_digest_and_listability(meta: Metadata, clock: FakeClock) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    push_tags_over_time(meta, clock, repo)
    set_locks(meta, repo, tag="v2", list_enabled=False)
    attributes = Attributes(meta)
    on_d1 = attributes.tags(reg.id, "library/app", last=None, n=10, digest=D1)
    assert [tag.name for tag in on_d1] == ["v0", "v3", "v3b", "v4"]
    on_d2 = attributes.tags(reg.id, "library/app", last=None, n=10, digest=D2)
    assert [(tag.name, tag.digest) for tag in on_d2] == [("v1", D2)]
    assert attributes.tags(reg.id, "library/app", last=None, n=10, digest=D3) == []
    assert attributes.tags(reg.id, "missing", last=None, n=10) is None
    # A time-ordered page after a tag that does not exist is empty, not the start again.
    assert attributes.tags(reg.id, "library/app", last="nope", n=10, order=Order.TIME_ASC) == []


@pytest.mark.parametrize("order", list(Order))
def test_manifests_pages_in_every_order(meta: Metadata, clock: FakeClock, order: Order) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    for digest in (D3, D1, D4, D2):
        clock.advance(timedelta(seconds=1))
        with meta.transaction() as tx:
            tx.put_manifest(repo, content(digest))
    with meta.transaction() as tx:
        tx.set_tag(repo, "b", D1)
        tx.set_tag(repo, "a", D1)
    clock.advance(timedelta(seconds=1))
    set_locks(meta, repo, digest=D3, write_enabled=False)  # moves D3 to the end in time
    set_locks(meta, repo, tag="b", list_enabled=False)
    expected = {
        Order.NAME: [D1, D2, D3, D4],
        Order.TIME_ASC: [D1, D4, D2, D3],
        Order.TIME_DESC: [D3, D2, D4, D1],
    }[order]
    attributes = Attributes(meta)

    def fetch(last: str | None, n: int) -> list[ManifestAttributes] | None:
        return attributes.manifests(reg.id, "library/app", last=last, n=n, order=order)

    assert walk(fetch, lambda m: m.digest, 3) == expected
    found = {m.digest: m for m in fetch(None, 10)}
    assert found[D1].tags == ("a",)  # listable tags only
    assert found[D3].locks == Locks(write_enabled=False)
    set_locks(meta, repo, digest=D4, list_enabled=False)
    assert D4 not in [m.digest for m in fetch(None, 10)]
    assert attributes.manifests(reg.id, "missing", last=None, n=10) is None
    make_repo(meta, reg, "empty")
    assert attributes.manifests(reg.id, "empty", last=None, n=10) == []


def test_delete_repository_removes_everything_in_it(meta: Metadata) -> None:
    reg, repo = tagged_manifest(meta)
    other = make_repo(meta, reg, "other")
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D3, 10)
        tx.link_blob(repo, D3)
        tx.link_blob(other, D3)
        tx.put_manifest(repo, content(D2, media_type=OCI_INDEX, children=(D1,)))
        tx.set_tag(repo, "multi", D2)
        tx.put_manifest(other, content(D1))
        tx.set_tag(other, "v1", D1)
    with meta.transaction() as tx:
        assert tx.delete_repository(repo) == ([D1, D2], ["multi", "v1"])
    assert not meta.repository_exists(reg.id, "library/app")
    assert meta.manifest_by_digest(reg.id, "library/app", D1) is None
    assert meta.linked_blob(reg.id, "library/app", D3) is None
    assert all_references(meta) == []
    # Other repositories and the blob rows stay (bytes are garbage collection's job).
    assert meta.manifest_by_tag(reg.id, "other", "v1") is not None
    assert meta.linked_blob(reg.id, "other", D3) == LinkedBlob(10, readable=True)
    assert meta.blob_size(reg.id, D3) == 10
    # The name can be used again, with fresh locks.
    assert make_repo(meta, reg) != repo
    assert Attributes(meta).repository(reg.id, "library/app").locks == Locks()


# -- garbage collection ----------------------------------------------------------------


def link_ages(meta: Metadata) -> dict[tuple[int, str], datetime]:
    link = t.blob_links
    with meta.engine.connect() as conn:
        rows = conn.execute(select(link.c.repository_id, link.c.digest, link.c.created_at))
        return {(row.repository_id, row.digest): row.created_at for row in rows}


def test_linking_again_or_losing_a_reference_restarts_the_grace_period(
    meta: Metadata, clock: FakeClock
) -> None:
    reg = make_registry(meta)
    repo = make_repo(meta, reg)
    with meta.transaction() as tx:
        for digest in (D1, D2, D3):
            tx.add_blob(reg.id, digest, 10)
            tx.link_blob(repo, digest)
        tx.put_manifest(repo, content(D4, blobs=(D1, D2)))
    made = clock()
    clock.advance(timedelta(hours=1))
    with meta.transaction() as tx:
        tx.link_blob(repo, D3)  # an upload or mount of a blob already linked
    assert link_ages(meta)[repo, D3] == clock()
    clock.advance(timedelta(hours=1))
    with meta.transaction() as tx:
        tx.delete_manifest(repo, D4)
    ages = link_ages(meta)
    assert ages[repo, D1] == ages[repo, D2] == clock()  # unreferenced from now on
    assert ages[repo, D3] == made + timedelta(hours=1)


def test_garbage_links_are_unreferenced_and_older_than_the_cutoff(
    meta: Metadata, clock: FakeClock
) -> None:
    reg, other_reg = make_registry(meta), make_registry(meta, "fabrikam")
    repo, other = make_repo(meta, reg), make_repo(meta, reg, "other")
    elsewhere = make_repo(meta, other_reg)
    with meta.transaction() as tx:
        for digest, size in ((D1, 1), (D2, 20), (D3, 300)):
            tx.add_blob(reg.id, digest, size)
            tx.link_blob(repo, digest)
        tx.link_blob(other, D2)  # D2: a mount into `other`, referenced there
        tx.put_manifest(other, content(D4, blobs=(D2,)))
        tx.put_manifest(repo, content(D4, blobs=(D3,)))
        tx.add_blob(other_reg.id, D1, 1)
        tx.link_blob(elsewhere, D1)  # another registry's: never this one's garbage
    cutoff = clock()
    clock.advance(timedelta(minutes=1))
    with meta.transaction() as tx:
        tx.add_blob(reg.id, D512, 5000)
        tx.link_blob(repo, D512)  # too young
    with meta.transaction() as tx:
        found = GarbageWrites(tx).garbage_links(reg.id, cutoff + timedelta(seconds=1), None, 10)
    # D1 and D2 in `repo`: nothing there references them; D3 is referenced; D512 young.
    assert found == [LinkKey(repo, D1), LinkKey(repo, D2)]
    with meta.transaction() as tx:
        writes = GarbageWrites(tx)
        first = writes.garbage_links(reg.id, cutoff + timedelta(seconds=1), None, 1)
        assert first == [LinkKey(repo, D1)]
        assert writes.garbage_links(reg.id, cutoff + timedelta(seconds=1), first[-1], 1) == [
            LinkKey(repo, D2)
        ]
    # A dry run: D1 goes with its last link; D2 stays (linked and referenced in `other`).
    assert garbage(meta, reg.id, cutoff + timedelta(seconds=1)).__dict__ == {
        "links": 2,
        "blobs": 1,
        "bytes": 1,
    }
    assert garbage(meta, reg.id, cutoff).__dict__ == {"links": 0, "blobs": 0, "bytes": 0}
    with meta.transaction() as tx:
        GarbageWrites(tx).delete_links(found)
    assert meta.linked_blob(reg.id, "library/app", D1) is None
    assert meta.linked_blob(reg.id, "other", D2) == LinkedBlob(20, readable=True)
    with meta.transaction() as tx:
        writes = GarbageWrites(tx)
        assert writes.unlinked_blobs(reg.id, "", 10) == [(D1, 1)]
        writes.delete_blobs(reg.id, [D1])
        assert writes.unlinked_blobs(reg.id, "", 10) == []
    assert meta.blob_size(reg.id, D1) is None
    assert meta.blob_size(other_reg.id, D1) == 1


def test_unlinked_blobs_page_in_digest_order(meta: Metadata) -> None:
    reg = make_registry(meta)
    with meta.transaction() as tx:
        for digest in (D3, D1, D2):
            tx.add_blob(reg.id, digest, 1)
    with meta.transaction() as tx:
        writes = GarbageWrites(tx)
        assert writes.unlinked_blobs(reg.id, "", 2) == [(D1, 1), (D2, 1)]
        assert writes.unlinked_blobs(reg.id, D2, 2) == [(D3, 1)]
