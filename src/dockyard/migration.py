"""Moving an installation to other backends (`dockyard migrate --to-config`): typically an
embedded one (SQLite and files in the data directory) to PostgreSQL and an S3 bucket.

The order keeps the target's invariants at every moment, so a run may be stopped at any
point and simply run again:

1. blobs first, each streamed from the source store into an upload of the target store
   and hashed on the way; only a blob whose digest and size match its row is committed
   (a damaged or missing one is reported, and the metadata is then not copied at all).
   Blobs the target already holds at the right size are skipped;
2. the secret key that seals stored secrets, to where the target deployment reads it;
3. the metadata rows, in one transaction (`metadata/transfer.py`), so no row becomes
   visible before every blob it may name is in place.

The source must not change meanwhile: stop its server first."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from dockyard.auth.secret_box import store_key
from dockyard.core.digests import algorithm_of, hasher
from dockyard.metadata import migrate
from dockyard.metadata.engine import database_url, make_engine
from dockyard.metadata.transfer import (
    StoredBlob,
    check_target,
    copy_rows,
    row_counts,
    stored_blobs,
)
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore
from dockyard.storage.stores import BlobStores

_CHUNK = 1 << 20


class MigrationRefused(RuntimeError):
    """The migration cannot start, for the reason in the message (one line)."""


class BlobDamaged(Exception):
    pass


class Progress(Protocol):
    """What a migration reports as it goes; `blob_bytes` is called from several threads."""

    def blobs_found(self, count: int, size: int) -> None: ...
    def blob_bytes(self, size: int) -> None: ...
    def rows_found(self, count: int) -> None: ...
    def rows_copied(self, table: str, count: int) -> None: ...


@dataclass(frozen=True)
class BlobFailure:
    blob: StoredBlob
    reason: str


@dataclass
class Report:
    """What a run did (or, on a dry run, would do)."""

    dry_run: bool
    moves_blobs: bool
    copied: int = 0
    skipped: int = 0
    copied_bytes: int = 0
    failures: list[BlobFailure] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    secret_key: Path | None = None


class Migration:
    def __init__(self, source: Settings, target: Settings) -> None:
        self.source, self.target = source, target
        self.moves_metadata = database_url(source.database_url) != database_url(target.database_url)
        self.moves_blobs = _storage_place(source) != _storage_place(target)
        if not (self.moves_metadata or self.moves_blobs):
            raise MigrationRefused(
                "the target configuration names the source's own database and storage: "
                "nothing to move"
            )

    def run(self, progress: Progress, jobs: int = 4, dry_run: bool = False) -> Report:
        report = Report(dry_run, self.moves_blobs)
        key = self._secret_key()
        source = self._source_engine()
        target = self._target_engine(dry_run) if self.moves_metadata else None
        try:
            if target is not None:
                check_target(source, target)  # before the upgrade touches a foreign one
                if not dry_run:
                    migrate.upgrade(target)
            blobs = stored_blobs(source)
            if self.moves_blobs:
                progress.blobs_found(len(blobs), sum(b.size for b in blobs))
                self._copy_blobs(blobs, progress, jobs, dry_run, report)
                if report.failures:
                    return report
            if key is not None:
                report.secret_key = self.target.secret_key_path.resolve()
                if not dry_run:
                    store_key(self.target.secret_key_path, key)
            if self.moves_metadata:
                counts = row_counts(source)
                if dry_run or target is None:
                    report.rows = counts
                else:
                    progress.rows_found(sum(counts.values()))
                    report.rows = copy_rows(source, target, progress.rows_copied)
            return report
        finally:
            source.dispose()
            if target is not None:
                target.dispose()

    # -- checks -----------------------------------------------------------------------

    def _source_engine(self) -> Engine:
        url = self.source.database_url
        file = _sqlite_file(url)
        if file is not None and not file.is_file():
            raise MigrationRefused(
                f"no Dockyard database at {file}: point --data-dir (or --config, "
                "--database-url) at the installation to move"
            )
        engine = make_engine(url)
        if not migrate.is_current(engine):
            found = migrate.current_revision(engine)
            engine.dispose()
            raise MigrationRefused(
                f"the source database is at schema {found}, this version needs "
                f"{migrate.head_revision()}: start its server once with this version, or "
                "run `dockyard db upgrade` on it"
            )
        return engine

    def _target_engine(self, dry_run: bool) -> Engine | None:
        url = self.target.database_url
        file = _sqlite_file(url)
        if file is not None:
            if dry_run and not file.exists():
                return None  # an empty target, and a dry run makes no file
            file.parent.mkdir(parents=True, exist_ok=True)
        return make_engine(url)

    def _secret_key(self) -> bytes | None:
        """The source's key, if it has one, once it is sure the target can take it: a
        different key already there would leave every sealed secret unreadable."""
        source_path = self.source.secret_key_path
        if not source_path.is_file():
            return None
        key = source_path.read_bytes().strip()
        target_path = self.target.secret_key_path
        if target_path.is_file() and target_path.read_bytes().strip() != key:
            raise MigrationRefused(
                f"{target_path} holds another secret key than {source_path}, which sealed "
                "the source's stored secrets: remove it, or set the target's "
                "auth.secret_key_file to the source's key"
            )
        return key

    # -- blobs ------------------------------------------------------------------------

    def _copy_blobs(
        self, blobs: list[StoredBlob], progress: Progress, jobs: int, dry_run: bool, report: Report
    ) -> None:
        sources, targets = (
            BlobStores.from_settings(self.source),
            BlobStores.from_settings(self.target),
        )
        names = sorted({b.registry for b in blobs})
        pairs = {name: (sources.for_registry(name), targets.for_registry(name)) for name in names}
        if not dry_run:
            for _, target in pairs.values():
                target.check()  # a bucket that is missing or read-only fails here, once

        def one(blob: StoredBlob) -> BlobFailure | bool:
            """True if copied (or, on a dry run, to copy), False if the target has it."""
            source, target = pairs[blob.registry]
            if target.stat(blob.digest) == blob.size:
                progress.blob_bytes(blob.size)
                return False
            if dry_run:
                progress.blob_bytes(blob.size)
                return True
            try:
                copy_blob(source, target, blob, progress.blob_bytes)
            except BlobDamaged as exc:
                return BlobFailure(blob, str(exc))
            return True

        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(one, blob) for blob in blobs]
            try:
                for blob, future in zip(blobs, futures, strict=True):
                    outcome = future.result()
                    if isinstance(outcome, BlobFailure):
                        report.failures.append(outcome)
                    elif outcome:
                        report.copied += 1
                        report.copied_bytes += blob.size
                    else:
                        report.skipped += 1
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise


def copy_blob(
    source: BlobStore, target: BlobStore, blob: StoredBlob, advance: Callable[[int], None]
) -> None:
    """Stream one blob into an upload of `target`, hashing it on the way, and publish it
    only if its digest and size are the row's; BlobDamaged (nothing published) if not."""
    if source.stat(blob.digest) is None:
        raise BlobDamaged("missing from the source's storage")
    upload_id = str(uuid.uuid4())
    digest = hasher(algorithm_of(blob.digest))
    size = 0
    target.start_upload(upload_id)
    try:
        writer = target.append_upload(upload_id, 0)
        try:
            with source.open(blob.digest) as reader:
                while chunk := reader.read(_CHUNK):
                    digest.update(chunk)
                    writer.write(chunk)
                    size += len(chunk)
                    advance(len(chunk))
        finally:
            writer.close()
        found = f"{algorithm_of(blob.digest)}:{digest.hexdigest()}"
        if found != blob.digest:
            raise BlobDamaged(f"its bytes hash to {found}")
        if size != blob.size:
            raise BlobDamaged(f"{size} bytes stored, {blob.size} recorded")
        target.commit_upload(upload_id, blob.digest)
    finally:
        target.abort_upload(upload_id)  # a committed upload's leftovers go too


def _storage_place(settings: Settings) -> tuple[str, ...]:
    storage = settings.storage
    if storage.kind == "filesystem":
        return ("filesystem", str(settings.blob_root))
    return ("s3", storage.endpoint or "", storage.bucket or "")


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(database_url(url))
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)
