"""Plain values the metadata layer hands upward, so no caller ever sees a SQL row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class RegistryRecord:
    id: int
    name: str
    login_server: str


@dataclass(frozen=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    body: bytes


@dataclass(frozen=True)
class ReferrerRecord:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations: str | None


@dataclass(frozen=True)
class UploadRecord:
    id: str
    registry_id: int
    repository: str
    size: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ManifestContent:
    """What `put_manifest` stores: the parsed facts of a manifest the core has validated."""

    digest: str
    media_type: str
    body: bytes
    artifact_type: str | None
    subject_digest: str | None
    annotations: str | None
    blob_digests: tuple[str, ...]
    child_digests: tuple[str, ...]
