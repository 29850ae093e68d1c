"""The tables. Alembic migrations in `migrations/versions` create and change them; a change
here without a migration is a bug (tests compare the two)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
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
    false,
    true,
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


def _flag(name: str, default: bool) -> Column:
    return Column(name, Boolean, nullable=False, server_default=true() if default else false())


def _locks() -> list[Column]:
    """ACR's changeable attributes, on repositories, tags and manifests alike."""
    return [
        _flag("write_enabled", True),
        _flag("delete_enabled", True),
        _flag("read_enabled", True),
        _flag("list_enabled", True),
    ]


registries = Table(
    "registries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False, unique=True),
    Column("login_server", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime(), nullable=False),
    _flag("admin_user_enabled", False),
    _flag("anonymous_pull_enabled", False),
    _flag("public_network_access", True),
    Column("network_default_action", String(8), nullable=False, server_default="Allow"),
    # Image lifecycle policies (`lifecycle.retention`, `lifecycle.soft_delete`): each is on from
    # its `*_enabled_at` (None: off); the days are kept while it is off.
    Column("retention_days", Integer, nullable=False, server_default="7"),
    Column("retention_enabled_at", UTCDateTime()),
    Column("soft_delete_days", Integer, nullable=False, server_default="7"),
    Column("soft_delete_enabled_at", UTCDateTime()),
    # The registry's tier (`tiers.tiers`), an optional storage quota replacing the tier's,
    # and the bytes its blobs take (each stored once: deduplicated), kept exact by the
    # transactions that add and remove blob rows (`metadata.usage`).
    Column("sku", String(16), nullable=False, server_default="Premium"),
    Column("storage_quota_bytes", BigInteger),
    Column("storage_used_bytes", BigInteger, nullable=False, server_default="0"),
    # Where the management API places the registry (`management.registry_resources`): None is
    # the server's default subscription and resource group; `tags` is a JSON object.
    Column("subscription_id", String(64)),
    Column("resource_group", String(90)),
    Column("location", String(64)),
    Column("tags", Text),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    *_locks(),
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

# A repository sees a blob only through a link row. `created_at` is when the link was
# last made (an upload or mount of a blob already linked makes it again) or last lost a
# manifest's reference: garbage collection's grace period counts from it.
blob_links = Table(
    "blob_links",
    metadata,
    Column("repository_id", ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(150), primary_key=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_blob_links_digest", "digest"),
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
    Column("config_media_type", String(255)),
    Column("architecture", String(32)),
    Column("os", String(32)),
    Column("image_size", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime()),
    # When the manifest lost its last tag (or, as an index's child, its last parent);
    # None while it has one. The retention policy deletes from this time + days.
    Column("untagged_at", UTCDateTime()),
    *_locks(),
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
    Index("ix_manifests_untagged_at", "untagged_at"),
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
    *_locks(),
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
    # The digest the upload is publishing, set before its bytes appear under it: if the
    # process dies before the blob row commits, the sweeper that expires this row finds
    # those bytes from here (never by walking storage).
    Column("digest", String(150)),
    Index("ix_uploads_updated_at", "updated_at"),
)

# The soft delete policy's recycle bin: manifests deleted while it was on, with their
# bodies and references (garbage collection keeps the blobs they name), and deleted tags.
# Keyed by repository name, not id: a deleted repository's content stays restorable.
deleted_manifests = Table(
    "deleted_manifests",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("digest", String(150), nullable=False),
    Column("media_type", String(255), nullable=False),
    Column("artifact_type", String(255)),
    Column("subject_digest", String(150)),
    Column("annotations", Text),
    Column("size", BigInteger, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("config_media_type", String(255)),
    Column("architecture", String(32)),
    Column("os", String(32)),
    Column("image_size", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=False),
    *_locks(),  # as they were, for the restore
    UniqueConstraint(
        "registry_id", "repository", "digest", name="uq_deleted_manifests_repository_digest"
    ),
    Index("ix_deleted_manifests_deleted_at", "deleted_at"),
)

deleted_manifest_references = Table(
    "deleted_manifest_references",
    metadata,
    Column(
        "deleted_manifest_id",
        ForeignKey("deleted_manifests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", String(150), primary_key=True),
    Column("is_manifest", Integer, nullable=False),
    Index("ix_deleted_manifest_references_digest", "digest"),
)

deleted_tags = Table(
    "deleted_tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("name", String(128), nullable=False),
    Column("digest", String(150), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("deleted_at", UTCDateTime(), nullable=False),
    *_locks(),  # as they were, for the restore
    Index("ix_deleted_tags_repository", "registry_id", "repository", "name"),
    Index("ix_deleted_tags_deleted_at", "deleted_at"),
)

# Scheduled purges (`dockyard purge` run by the background worker on a cron schedule).
# `next_run_at` is claimed by moving it on before a run, so one worker runs each due one.
purge_schedules = Table(
    "purge_schedules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("cron", String(128), nullable=False),
    Column("filters", Text, nullable=False),  # JSON list of "repo-regex:tag-regex"
    Column("ago_seconds", Integer, nullable=False),
    Column("untagged", Boolean, nullable=False),
    Column("untagged_only", Boolean, nullable=False),
    Column("keep", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_run_at", UTCDateTime(), nullable=False),
    Column("last_run_at", UTCDateTime()),
    Column("last_result", Text),
    UniqueConstraint("registry_id", "name", name="uq_purge_schedules_registry_name"),
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
    # A repository's events of an action, newest first: what geo-replication reads for
    # the stamp of a tag, lock or quarantine state this region wrote last
    # (`metadata.replication.last_local_write` and the like), once per change a peer
    # sends; without it each read scans the whole outbox.
    Index("ix_events_repository", "registry_id", "repository", "action", "id", "created_at"),
)

# Each consumer's progress through the outbox: one row per (consumer, event) once the
# consumer has seen the event. A claim moves `next_attempt_at` past a lease, so a worker
# that dies mid-delivery has its events retried; a failure records the error and backs off.
event_deliveries = Table(
    "event_deliveries",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("event_id", ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("delivered_at", UTCDateTime()),
    Column("last_error", Text),
    Index("ix_event_deliveries_due", "consumer", "delivered_at", "next_attempt_at"),
    Index("ix_event_deliveries_event", "event_id"),
)


# One row, bumped by every change to the tables the per-process configuration reads come
# from (registries but their `storage_used_bytes`, network rules, identities, secrets,
# role assignments, scope maps, tokens, the admin user's passwords, login failures): by
# triggers (migration 0012 on SQLite, 0018 on PostgreSQL), so that those reads stay
# cached while content changes (`read_cache.ReadCache`). A new table behind such a read
# needs its triggers.
config_generation = Table(
    "config_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# Its twin for content: one row, bumped by every change to the tables the per-thread
# content cache reads (repositories, tags, manifests; `read_cache.CONTENT_TABLES`), by
# triggers (migration 0014 on SQLite, 0018 on PostgreSQL), so that manifest reads and
# tag lists stay cached while audit rows, outbox marks and blob uploads are written.
content_generation = Table(
    "content_generation",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)


# -- identity and access ---------------------------------------------------------------

# The admin user's two passwords: kept encrypted (not hashed), because ACR shows them
# back to whoever may list credentials.
admin_passwords = Table(
    "admin_passwords",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(16), primary_key=True),  # password, password2
    Column("secret", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Users and service principals, server-wide, like a directory's principals.
identities = Table(
    "identities",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # user, servicePrincipal
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime(), nullable=False),
)

identity_secrets = Table(
    "identity_secrets",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("identity_id", ForeignKey("identities.id", ondelete="CASCADE"), nullable=False),
    Column("hash", Text, nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_identity_secrets_identity", "identity_id"),
)

# A role granted to an identity on a registry, or on repositories of it matching
# `repository` (a name, `prefix/*` or `*`); with no registry, on the whole server (every
# registry, and creating registries: the management API's server scope).
role_assignments = Table(
    "role_assignments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("identity_id", ForeignKey("identities.id", ondelete="CASCADE"), nullable=False),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE")),
    Column("role", String(128), nullable=False),
    Column("repository", String(255)),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_role_assignments_identity", "identity_id", "registry_id"),
)

scope_maps = Table(
    "scope_maps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("description", Text),
    Column("kind", String(16), nullable=False),  # SystemDefined, UserDefined
    Column("actions", Text, nullable=False),  # JSON list of repositories/<repo>/<action>
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_scope_maps_registry_name"),
)

# Repository-scoped tokens: a username and passwords bound to one scope map.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("scope_map_id", ForeignKey("scope_maps.id", ondelete="RESTRICT"), nullable=False),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_tokens_registry_name"),
)

token_passwords = Table(
    "token_passwords",
    metadata,
    Column("token_id", ForeignKey("tokens.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(16), primary_key=True),  # password1, password2
    Column("hash", Text, nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Refresh tokens are JWTs; their ids are kept so that they can be revoked.
refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("revoked_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_refresh_tokens_subject", "registry_id", "subject"),
)

# Token-signing keys: the newest active key signs, every unexpired one verifies (JWKS).
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("algorithm", String(16), nullable=False),
    Column("private_key", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime()),
)

network_rules = Table(
    "network_rules",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("cidr", String(64), primary_key=True),
    Column("action", String(8), nullable=False, server_default="Allow"),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Every login attempt, kept for the audit log (ContainerRegistryLoginEvents).
login_events = Table(
    "login_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("identity", String(255), nullable=False),
    Column("method", String(32), nullable=False),
    Column("caller_ip", String(64), nullable=False),
    Column("result", String(16), nullable=False),
    Column("description", Text),
    Column("user_agent", Text),
    Column("correlation_id", String(64)),  # the request's id (CorrelationId)
    Index("ix_login_events_time", "registry_id", "time"),
    Index("ix_login_events_pruned", "time"),  # retention deletes across registries
)

# The audit log of repository operations (ACR's ContainerRegistryRepositoryEvents):
# pushes, untags and deletes written from the outbox by the `audit` consumer
# (`event_id`, unique, makes its redeliveries no-ops); pulls and refused operations
# written from the request path in batches (`dockyard.audit.log`).
repository_events = Table(
    "repository_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("time", UTCDateTime(), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("tag", String(128)),
    Column("digest", String(160)),
    Column("result_type", String(16), nullable=False),
    Column("result_description", Text),
    Column("identity", String(255)),
    Column("caller_ip", String(64)),
    Column("user_agent", Text),
    Column("login_server", String(255)),
    Column("correlation_id", String(64)),
    Column("size", BigInteger),
    Column("media_type", String(255)),
    Column("artifact_type", String(255)),
    Column("duration_ms", Integer),
    Column("event_id", Integer, unique=True),
    # The only index: a pull writes a row, and each index is paid for at every pull.
    # Queries and pruning go per registry (`metadata.audit`).
    Index("ix_repository_events_time", "registry_id", "time"),
)

# Recent failed logins per (identity, source address), shared by every node.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(320), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("window_start", UTCDateTime(), nullable=False),
)


# -- pull-through cache ----------------------------------------------------------------

# Credentials for an upstream registry (ACR's credential sets). The password is sealed
# with the server's secret key (`auth/secret_box.py`), as the admin user's are: the
# server must send it upstream, so it cannot be hashed.
credential_sets = Table(
    "credential_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(50), nullable=False),
    Column("login_server", String(255), nullable=False),
    Column("username", String(255), nullable=False),
    Column("password", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_credential_sets_registry_name"),
)

# Cache rules: a pull that finds nothing in `target_repository` (a name, `prefix/*` or
# `*`) fetches from `source_repository` (`host/name`, `host/prefix/*` or `host/*`).
# `created_by`: the identity that made the rule (None: the anonymous caller), as whom a
# source that is a registry of this server is read.
cache_rules = Table(
    "cache_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(50), nullable=False),
    Column("source_repository", String(512), nullable=False),
    Column("target_repository", String(255), nullable=False),
    Column("credential_set_id", ForeignKey("credential_sets.id", ondelete="RESTRICT")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(36)),
    UniqueConstraint("registry_id", "name", name="uq_cache_rules_registry_name"),
    UniqueConstraint("registry_id", "target_repository", name="uq_cache_rules_registry_target"),
)

# -- webhooks ------------------------------------------------------------------------------

# Where a registry's events are POSTed (`dockyard.webhooks`). The service URI and the
# custom headers (a JSON object) may carry credentials, as ACR assumes: both are sealed
# with the server's key and shown only by getCallbackConfig. `actions` is a
# comma-separated list; `after_event_id` is the newest outbox event when the webhook was
# created or last enabled: it is sent only later ones (none while it was disabled).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(50), nullable=False),
    Column("service_uri", Text, nullable=False),
    Column("custom_headers", Text),
    Column("actions", String(128), nullable=False),
    Column("scope", String(255), nullable=False),  # empty: every repository
    _flag("enabled", True),
    Column("after_event_id", Integer, nullable=False, server_default="0"),
    Column("location", String(64)),
    Column("tags", Text),  # a JSON object: the management API's resource tags
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_webhooks_registry_name"),
)

# Every POST a webhook made (deliveries, their retries and pings), as ACR's listEvents
# shows them: the request as sent but with secrets masked, and the answer (bounded), or
# `error` when none came. `event_id` is the payload's id, the same on every retry.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("webhook_id", ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("action", String(32), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("request_uri", Text, nullable=False),
    Column("request_headers", Text, nullable=False),
    Column("request_body", Text, nullable=False),
    Column("response_status", Integer),
    Column("response_reason", String(255)),
    Column("response_headers", Text),
    Column("response_body", Text),
    Column("error", Text),
    Column("sent_at", UTCDateTime(), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_events_webhook", "webhook_id", "id"),
    Index("ix_webhook_events_event", "webhook_id", "event_id"),
)

# -- management operations -------------------------------------------------------------------

# The management API's long-running operations (importImage): answered 202 at once, run
# by the process that accepted them, polled from any node at their Location. `status`:
# InProgress, Succeeded, Failed (then `error_status`, `error_code`, `error_message` are
# what the poll answers). `updated_at` is the runner's heartbeat: an operation whose
# process died stops beating and is reported failed. `details` (a JSON object) is what
# a poll shows besides: the progress while it runs, what it did once it succeeded.
operations = Table(
    "operations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("error_status", Integer),
    Column("error_code", String(64)),
    Column("error_message", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("details", Text),
    Index("ix_operations_created", "created_at"),
)

# -- encryption at rest ----------------------------------------------------------------------

# A registry's customer-managed key (`encryption`): enabling is one-way, as on ACR.
# `key_identifier` is what the customer named (versioned or not: a non-versioned one is
# followed to its newest version), `versioned_key_identifier` the version that wraps the
# registry's data keys now; `identity` is ACR's client id of the identity that reaches the
# key, kept and shown.
registry_encryption = Table(
    "registry_encryption",
    metadata,
    Column(
        "registry_id",
        ForeignKey("registries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key_identifier", String(512), nullable=False),
    Column("versioned_key_identifier", String(512), nullable=False),
    Column("identity", String(128)),
    Column("enabled_at", UTCDateTime(), nullable=False),
    Column("last_rotation_at", UTCDateTime()),
)

# The data keys that encrypt a registry's blobs, only ever stored wrapped by the
# registry's key-encryption key (`wrapped_by`: the versioned key identifier). The newest
# row (highest `id`) encrypts new blobs; older ones still decrypt what they encrypted until
# a background rewrite retires them (`retired_at`).
data_keys = Table(
    "data_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("wrapped", LargeBinary, nullable=False),
    Column("wrapped_by", String(512), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("retired_at", UTCDateTime()),
    UniqueConstraint("registry_id", "key_id", name="uq_data_keys_registry_key"),
)

# -- quarantine ---------------------------------------------------------------------------

# ACR's `quarantinePolicy`: a row while it is enabled on a registry. A configuration table
# (`read_cache.CONFIG_TABLES`): every manifest pull asks whether it is on.
quarantine_policies = Table(
    "quarantine_policies",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled_at", UTCDateTime(), nullable=False),
)

# The quarantine state an AcrQuarantineWriter set on a manifest (`Passed` or `Failed`) and
# its `quarantineDetails` (the JSON string, as sent). No row: `Quarantined` while the
# policy is on. Goes with its manifest, so that a manifest deleted and pushed again is
# quarantined again. A content table (`read_cache.CONTENT_TABLES`): pulls read it.
quarantine_states = Table(
    "quarantine_states",
    metadata,
    Column("manifest_id", ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("details", Text),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# -- vulnerability scanning ----------------------------------------------------------------

# OSV advisories imported from export files (`dockyard vulndb import`): one row per
# advisory id, replaced when a newer `modified` arrives. `severity` is the qualitative
# rating computed at import (`scanning.severity`), `score` its CVSS base score, if any;
# `imported_at` moves only when the row is added or replaced, so the newest one says when
# the database last changed (the rescan job's signal).
vuln_advisories = Table(
    "vuln_advisories",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("modified", UTCDateTime(), nullable=False),
    Column("aliases", Text, nullable=False),  # JSON array
    Column("summary", Text),
    Column("severity", String(16), nullable=False),
    Column("score", Float),
    Column("vector", String(255)),
    Column("imported_at", UTCDateTime(), nullable=False),
    Index("ix_vuln_advisories_imported_at", "imported_at"),
)

# One row per `affected[]` entry of an advisory: the package it names and its ranges
# and explicit versions as OSV writes them (JSON), found by (ecosystem, name).
vuln_affected = Table(
    "vuln_affected",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advisory_id", ForeignKey("vuln_advisories.id", ondelete="CASCADE"), nullable=False),
    Column("ecosystem", String(100), nullable=False),
    Column("name", String(255), nullable=False),
    Column("ranges", Text, nullable=False),  # JSON array of OSV ranges
    Column("versions", Text, nullable=False),  # JSON array
    Index("ix_vuln_affected_package", "ecosystem", "name"),
    Index("ix_vuln_affected_advisory", "advisory_id"),
)

# A manifest's latest scan in a registry: its findings (JSON, `scanning.findings`), the
# worst severity among them, and the report referrer pushed for it. The repository is
# the one it was scanned in (a rescan reads the layers there).
scan_results = Table(
    "scan_results",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(150), primary_key=True),
    Column("repository", String(255), nullable=False),
    Column("scanned_at", UTCDateTime(), nullable=False),
    Column("worst", String(16), nullable=False),
    Column("findings", Text, nullable=False),
    Column("report_digest", String(150)),
    Index("ix_scan_results_scanned_at", "scanned_at"),
)

# A registry's scanning switches: scan on push, and the vulnerability pull policy (refuse
# pulls of images with findings at or above `block_severity`, except advisories in
# `allowlist`, in repositories matching `repositories`; both JSON arrays, none: all).
scan_policies = Table(
    "scan_policies",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    _flag("scan_on_push", False),
    _flag("block_enabled", False),
    _flag("quarantine_writer", False),
    Column("block_severity", String(16), nullable=False, server_default="critical"),
    Column("allowlist", Text, nullable=False, server_default="[]"),
    Column("repositories", Text, nullable=False, server_default="[]"),
)

# -- ACR Tasks -------------------------------------------------------------------------------

# A registry's runs (`dockyard.tasks`): quick builds and runs (scheduleRun), numbered per
# registry (`run_id` is ACR's `ca<number>`). `status`: Queued, Running, then Succeeded,
# Failed, Canceled, Timeout or Error. `request` is the run request as accepted (a JSON
# object, secret argument values removed), `output_images` a JSON list of what it pushed.
# `source` names the uploaded build context it uses (removed when the run ends);
# `updated_at` is the runner's heartbeat while it runs.
task_runs = Table(
    "task_runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("run_type", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("task_name", String(50)),
    Column("request", Text, nullable=False),
    Column("source", String(255)),
    Column("timeout_seconds", Integer, nullable=False),
    Column("output_images", Text),
    Column("error_message", Text),
    Column("runner", String(64)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("trigger", Text),  # JSON: what started it (`timerTrigger`), None: a request
    UniqueConstraint("registry_id", "number", name="uq_task_runs_registry_number"),
    Index("ix_task_runs_status", "status", "id"),
)

# A finished run's log, kept in its registry's blob store under `digest` (no row of
# `blobs`: no manifest needs it, garbage collection never sees it) until `[tasks]
# log_retention_days` after `stored_at`.
task_run_logs = Table(
    "task_run_logs",
    metadata,
    Column("run_id", ForeignKey("task_runs.id", ondelete="CASCADE"), primary_key=True),
    Column("digest", String(71), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("stored_at", UTCDateTime(), nullable=False),
    Index("ix_task_run_logs_stored_at", "stored_at"),
)

# A registry's tasks (`registries/tasks`): `properties` is the task's ARM properties as a
# JSON object (step, platform, timeout, agentConfiguration, credentials, status, trigger,
# logTemplate), its secret values (context tokens, secret arguments and values, trigger
# tokens, registry credentials) sealed with the registry's key.
tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(50), nullable=False),
    Column("location", String(64), nullable=False),
    Column("tags", Text, nullable=False),
    Column("properties", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_tasks_registry_name"),
)

# A registry's task runs (`registries/taskRuns`, ARM's preview resource): a run request
# kept under a name, run when it is created and again when `forceUpdateTag` changes or
# a new request is given. `run_request` is the request as shown (JSON, secret values
# left out: the run keeps them sealed in its plan), `run_number` the latest run's.
task_run_resources = Table(
    "task_run_resources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(50), nullable=False),
    Column("location", String(64), nullable=False),
    Column("identity", Text),  # JSON: ARM's managed identity block, as given
    Column("run_request", Text, nullable=False),
    Column("force_update_tag", String(256)),
    Column("run_number", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "name", name="uq_task_run_resources_registry_name"),
)

# The enabled timer triggers of enabled or disabled tasks (a disabled task's are skipped
# when due), kept with the task's properties. `next_run_at` is claimed by moving it on
# before the run is queued, so one worker queues each occurrence.
task_timers = Table(
    "task_timers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("schedule", String(128), nullable=False),
    Column("next_run_at", UTCDateTime(), nullable=False),
    Index("ix_task_timers_next_run_at", "next_run_at"),
)

# The base images a task's last build started from (`baseImageDependencies`): `kind`
# RunTime (the final stage's) or BuildTime (an earlier stage's). `registry_id` is this
# server's registry that holds the image (its tag's pushes trigger at once), None for an
# image elsewhere (polled: `checked_at` is the last look). `digest` is what the tag named
# when last seen; a push or poll that finds another claims the row by moving it on.
task_base_images = Table(
    "task_base_images",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE")),
    Column("host", String(255), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("tag", String(128), nullable=False),
    Column("digest", String(150)),
    Column("checked_at", UTCDateTime()),
    UniqueConstraint("task_id", "host", "repository", "tag", name="uq_task_base_images_task_image"),
    Index("ix_task_base_images_tag", "registry_id", "repository", "tag"),
)

# -- signatures and trust policy -------------------------------------------------------------

# A registry's trust policy (`signing.trust_policy`): the document as given (JSON), whether
# pulls are checked against it (`enabled`: the management API's trustPolicy status), and
# `version`, moved by every change of the policy or of the registry's trust stores, so
# that a verdict kept under the old version is never used again.
trust_policies = Table(
    "trust_policies",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("document", Text),
    _flag("enabled", False),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# A registry's named trust stores: `type` ca or signingAuthority (PEM CA certificates, for
# Notation) or cosign (PEM public keys); `material` is the PEM text, every certificate or
# key of the store.
trust_stores = Table(
    "trust_stores",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("name", String(128), nullable=False),
    Column("material", Text, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("registry_id", "type", "name", name="uq_trust_stores_registry_name"),
)

# -- geo-replication ---------------------------------------------------------------------------

# A registry's replications in other regions (`registries/{name}/replications/{region}`);
# the home region is not a row (it is the deployment's own). `status` is what the last
# attempt to reach the region found (Syncing, Ready, Failed), with its message and time;
# `last_error` the last failure's reason, kept after the region recovers.
replications = Table(
    "replications",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(50), primary_key=True),
    Column("region", String(50), nullable=False),
    Column("tags", Text, nullable=False, server_default="{}"),
    _flag("region_endpoint_enabled", True),
    Column("zone_redundancy", String(16), nullable=False, server_default="Disabled"),
    Column("status", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("status_at", UTCDateTime(), nullable=False),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
)

# The last write of each tag of a replicated registry, as the conflict rule orders writes
# (`replication.stamps`): its stamp (wall microseconds, region), the digest it set (None:
# a delete, kept as a tombstone), and the tag's `updated_at` right after it was applied
# here (None for a delete), which tells whether a local write came since.
tag_stamps = Table(
    "tag_stamps",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("repository", String(255), primary_key=True),
    Column("tag", String(128), primary_key=True),
    Column("wall", BigInteger, nullable=False),
    Column("region", String(50), nullable=False),
    Column("digest", String(150)),
    Column("observed_at", UTCDateTime()),
)

# The stamp of each attribute a peer region wrote here (geo-replication): a lock of a
# repository, tag or manifest, a manifest's quarantine state. `target` is "" (the
# repository), "tag:<name>" or "manifest:<digest>"; `attribute` ACR's name
# (`writeEnabled`, ..., `quarantineState`). This region's own writes are stamped by
# their outbox events.
attribute_stamps = Table(
    "attribute_stamps",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("repository", String(255), primary_key=True),
    Column("target", String(200), primary_key=True),
    Column("attribute", String(32), primary_key=True),
    Column("wall", BigInteger, nullable=False),
    Column("region", String(50), nullable=False),
)

# A registry's storage in use at the end of each day (UTC), as the tiers' hourly job
# last saw it (`tiers/history.py`): the usage chart's storage line.
storage_days = Table(
    "storage_days",
    metadata,
    Column("registry_id", ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("used_bytes", BigInteger, nullable=False),
)
