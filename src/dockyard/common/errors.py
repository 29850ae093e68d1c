"""Domain errors. Each carries the OCI Distribution error code it stands for; the HTTP
status and wire shape are decided at the edge (`dockyard.api.errors`), never here."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """Base of every error a client may see; `code` is the spec's error code."""

    code = "UNKNOWN"
    default_message = "unknown error"

    def __init__(self, message: str | None = None, detail: Any = None) -> None:
        self.message = message or self.default_message
        self.detail = detail
        super().__init__(self.message)


class BlobUnknown(RegistryError):
    code = "BLOB_UNKNOWN"
    default_message = "blob unknown to registry"


class BlobUploadInvalid(RegistryError):
    code = "BLOB_UPLOAD_INVALID"
    default_message = "blob upload invalid"


class RangeInvalid(BlobUploadInvalid):
    """A chunk that does not start where the upload ends (the spec's 416)."""

    default_message = "requested range not satisfiable"


class BlobUploadUnknown(RegistryError):
    code = "BLOB_UPLOAD_UNKNOWN"
    default_message = "blob upload unknown to registry"


class DigestInvalid(RegistryError):
    code = "DIGEST_INVALID"
    default_message = "provided digest did not match uploaded content"


class ManifestBlobUnknown(RegistryError):
    code = "MANIFEST_BLOB_UNKNOWN"
    default_message = "manifest references a manifest or blob unknown to registry"


class ManifestInvalid(RegistryError):
    code = "MANIFEST_INVALID"
    default_message = "manifest invalid"


class ManifestTooLarge(ManifestInvalid):
    default_message = "manifest exceeds the size limit"


class ManifestUnknown(RegistryError):
    code = "MANIFEST_UNKNOWN"
    default_message = "manifest unknown to registry"


class NameInvalid(RegistryError):
    code = "NAME_INVALID"
    default_message = "invalid repository name"


class NameUnknown(RegistryError):
    code = "NAME_UNKNOWN"
    default_message = "repository name not known to registry"


class SizeInvalid(RegistryError):
    code = "SIZE_INVALID"
    default_message = "provided length did not match content length"


class TagInvalid(ManifestInvalid):
    default_message = "invalid tag"


class PaginationInvalid(RegistryError):
    code = "PAGINATION_NUMBER_INVALID"
    default_message = "invalid number of results requested"


class Unsupported(RegistryError):
    code = "UNSUPPORTED"
    default_message = "the operation is unsupported"


class Unavailable(RegistryError):
    """A backend (database, storage) cannot serve the request right now."""

    code = "UNAVAILABLE"
    default_message = "service unavailable"


class MetadataUnavailable(Unavailable):
    """The metadata database cannot be reached (refused, dropped or timed out a
    connection; on SQLite, a lock held past the busy timeout): raised by `metadata`
    instead of the driver's error, so that callers meet a domain error, not SQLAlchemy."""

    default_message = "the metadata database is unavailable; retry shortly"


class StorageUnavailable(Unavailable):
    """The blob store cannot be reached (refused, dropped or timed out a connection, or
    answered with a server error): raised by `storage` instead of the client library's
    error, so that callers meet a domain error, not botocore."""

    default_message = "blob storage is unavailable; retry shortly"


class KeyUnavailable(Unavailable):
    """A key that encrypts a registry's blobs cannot be had right now: the
    key-encryption key that wraps its data keys cannot be reached or used (missing,
    deleted, disabled, a wrong PIN, its token absent, wrapped bytes that do not unwrap),
    or a data key is not known. Raised by `encryption` and the keyring that
    `storage/encrypted.py` asks, instead of the provider's error. The message names the
    key identifier, never key material or a PIN."""

    default_message = "the registry's encryption key is unavailable"


class KeyNotFound(KeyUnavailable):
    """The key (or the key version) an identifier names does not exist. While the
    registry runs, that is a revoked key like any other (503); when a request names it
    to turn encryption on or change the key, the request is wrong (400, `RequestInvalid`
    with this message)."""

    default_message = "the encryption key was not found"


class BlobCorrupt(RegistryError):
    """Stored bytes that fail their integrity check: an encrypted blob block that does
    not authenticate (a wrong key, altered or moved bytes) or is cut short, or a blob
    whose bytes no longer match its digest. A server fault (500), never served as
    content."""

    default_message = "the stored blob failed its integrity check"


class Unauthorized(RegistryError):
    """No usable credentials. `scope` is what to ask the token service for (docker scope
    string) or None where any login will do; the API turns it into the challenge."""

    code = "UNAUTHORIZED"
    default_message = "authentication required"

    def __init__(
        self,
        message: str | None = None,
        detail: Any = None,
        scope: str | None = None,
        error: str | None = None,
    ) -> None:
        super().__init__(message, detail)
        self.scope = scope
        self.error = error


class Denied(RegistryError):
    """Authenticated, but not allowed to do this."""

    code = "DENIED"
    default_message = "requested access to the resource is denied"


class TagExists(Denied):
    """An import would move a tag that already names another manifest, and was not told
    to (ACR's `--force`)."""

    default_message = "the tag exists; force the import to move it"


class Conflict(Denied):
    """The change would overwrite something the caller did not say to (a restore onto a
    tag that names another manifest, without `force`)."""

    default_message = "the change conflicts with the registry's state"


class QuotaExceeded(Denied):
    """A push would take the registry's storage past its quota (`tiers.quotas`). DENIED
    (403), which clients print with its message, rather than 413, which has no OCI code
    and which some clients report without the body."""

    default_message = "the registry's storage quota is exceeded"


class TierLimit(Denied):
    """The registry's tier (SKU) does not allow this, or a change of tier does not fit
    what the registry uses; the message says what to remove or which tier allows it.
    DENIED on the registry APIs; ARM's `QuotaExceeded` on the management API."""

    default_message = "the registry's tier does not allow this"


class TooManyRequests(RegistryError):
    code = "TOOMANYREQUESTS"
    default_message = "too many requests"

    def __init__(
        self, message: str | None = None, detail: Any = None, retry_after: int = 60
    ) -> None:
        super().__init__(message, detail)
        self.retry_after = retry_after


class Locked(Denied):
    """A lock (ACR's changeable attributes: writeEnabled, deleteEnabled, readEnabled)
    refuses the operation, whoever asks; the message says which and how to lift it."""

    default_message = "the operation is refused by a lock"


class RequestInvalid(RegistryError):
    """Parameters or a body that the operation does not accept (`/acr/v1` PATCH bodies,
    `orderby` values); the OCI codes have no better fit."""

    code = "INVALID_REQUEST"
    default_message = "invalid request"


class RegistryHostInvalid(RequestInvalid):
    """A registry named in a form that is no `HOST[:PORT]` (an import's source, a cache
    rule's): refused before anything is read, never guessed at."""

    default_message = "invalid registry host"


class ReplicationUnknown(RegistryError):
    """The registry has no replication of that name (geo-replication): 404."""

    code = "ResourceNotFound"
    default_message = "the replication was not found"


class RegionUnavailable(RequestInvalid):
    """A replication placed in a region this deployment does not know as a peer (ARM's
    code for a location a resource type is not offered in)."""

    code = "LocationNotAvailableForResourceType"
    default_message = "the location is not a region of this deployment"


class ReplicationInvalid(RequestInvalid):
    """A change of replications ACR refuses too: a second replication in one region, a
    change or delete of the home region's, a name outside ARM's rule."""

    default_message = "invalid replication"
