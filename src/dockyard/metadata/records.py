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
class Locks:
    """ACR's changeable attributes of a repository, tag or manifest (all true by default);
    which operation each one refuses is decided in `core.locks`."""

    write_enabled: bool = True
    delete_enabled: bool = True
    read_enabled: bool = True
    list_enabled: bool = True


@dataclass(frozen=True)
class ReadFlags:
    """`readEnabled` of everything a manifest read goes through, fetched by the same
    statement as the manifest so that a pull stays one query. `tag` is True when the
    manifest was read by digest."""

    repository: bool
    tag: bool
    manifest: bool


@dataclass(frozen=True)
class ManifestRecord:
    digest: str
    media_type: str
    size: int
    body: bytes
    read: ReadFlags


@dataclass(frozen=True)
class LinkedBlob:
    """A blob as a repository sees it, with the repository's `readEnabled`."""

    size: int
    readable: bool


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
    digest: str | None  # set once the upload starts publishing its bytes under it


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
    # What /acr/v1 shows of it, computed at push time (see core.manifests).
    config_media_type: str | None = None
    architecture: str | None = None
    os: str | None = None
    image_size: int = 0
