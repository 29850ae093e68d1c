"""Configuration: one `Settings` object built at start-up and passed down.

Sources, strongest first: command-line flags, environment (`DOCKYARD_...`, nested with
`__`, e.g. `DOCKYARD_SERVER__LISTEN`), the TOML file (`--config`), then these defaults."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field, IPvAnyNetwork, PositiveInt, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


class ServerSettings(BaseModel):
    listen: str = Field("localhost:5000", description="address and port to listen on")
    workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="server worker processes (default: one per CPU)",
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    stop_timeout_seconds: int = Field(
        30,
        ge=1,
        description="on SIGTERM, how long a worker may take to finish its requests in flight "
        "and stop before it is killed",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="addresses or CIDRs of reverse proxies whose X-Forwarded-For is believed "
        "(default: none, the peer address is the client)",
    )


class TLSSettings(BaseModel):
    cert_file: Path | None = Field(None, description="PEM certificate (chain) to serve HTTPS with")
    key_file: Path | None = Field(None, description="PEM private key of cert_file")
    self_signed: bool = Field(
        False,
        description="serve HTTPS with a self-signed development certificate kept in DATA_DIR/tls",
    )

    @model_validator(mode="after")
    def _one_source(self) -> TLSSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("tls.cert_file and tls.key_file go together: give both or neither")
        if self.self_signed and self.cert_file is not None:
            raise ValueError("tls.self_signed and tls.cert_file exclude each other: choose one")
        return self


class StorageSettings(BaseModel):
    kind: Literal["filesystem", "s3"] = Field(
        "filesystem", description="where blobs live: files, or an S3-compatible bucket"
    )
    path: Path | None = Field(None, description="blob directory (default: DATA_DIR/blobs)")
    endpoint: str | None = Field(
        None, description="S3 endpoint URL (default: AWS S3 in the region)"
    )
    bucket: str | None = Field(None, description="S3 bucket; each registry keeps a key prefix")
    region: str = Field("us-east-1", description="S3 region")
    access_key: str | None = Field(
        None, description="S3 access key (default: the AWS credential chain)"
    )
    secret_key: SecretStr | None = Field(None, description="S3 secret key")
    path_style: bool = Field(
        False, description="address the bucket in the path, not the host name (SeaweedFS, MinIO)"
    )
    redirect: bool = Field(
        False,
        description="answer blob GETs with a 307 to a pre-signed S3 URL (clients fetch "
        "from the bucket; it must be reachable from them)",
    )
    nginx_offload: str | None = Field(
        None,
        description="S3 behind nginx: answer blob GETs with `X-Accel-Redirect` to this "
        "internal location of the nginx in front (e.g. `/_blob/`), which fetches the bytes "
        "from the bucket with a pre-signed URL; clients never reach the bucket and the "
        "nodes never touch the bytes (docs/deploy.md has the nginx side)",
    )
    connect_timeout_seconds: float = Field(
        2.0, gt=0, description="S3: give up connecting after this long (a store that is down)"
    )
    read_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="S3: give up on an answer that sends nothing for this long (a store that "
        "hangs)",
    )
    max_attempts: int = Field(
        2,
        ge=1,
        description="S3: tries of a call that failed to connect, timed out or met a server "
        "error, the first included; then the request answers 503",
    )

    @model_validator(mode="after")
    def _bucket_for_s3(self) -> StorageSettings:
        if self.kind == "s3" and not self.bucket:
            raise ValueError('storage.kind = "s3" needs storage.bucket')
        if self.nginx_offload is not None:
            if self.kind != "s3" or self.redirect:
                raise ValueError("storage.nginx_offload needs S3 storage, without redirect")
            if not (self.nginx_offload.startswith("/") and self.nginx_offload.endswith("/")):
                raise ValueError('storage.nginx_offload is a path that starts and ends with "/"')
        return self


class EncryptionSettings(BaseModel):
    """Where the key-encryption keys that wrap registries' data keys are held: a key
    identifier's scheme chooses the provider (`local:NAME` or `pkcs11:token=...`)."""

    key_dir: Path | None = Field(
        None,
        description="`local:` keys: one file per key version, readable by the owner only "
        "(default: DATA_DIR/keys); every node of a deployment needs the same files",
    )
    pkcs11_module: Path | None = Field(
        None,
        description="`pkcs11:` keys: the PKCS#11 module (.so) of the HSM that holds them "
        "(e.g. /usr/lib/softhsm/libsofthsm2.so)",
    )
    pkcs11_pin: SecretStr | None = Field(
        None,
        description="`pkcs11:` keys: the user PIN of their tokens (from the environment: "
        "DOCKYARD_ENCRYPTION__PKCS11_PIN)",
    )
    check_seconds: float = Field(
        60.0,
        gt=0,
        description="keep a registry's unwrapped data keys in memory this long, then unwrap "
        "them again: a revoked key stops the registry's reads and writes within this time",
    )
    interval_seconds: float = Field(
        300.0,
        gt=0,
        description="the background work's round over encrypted registries: follow a key to "
        "its newest version, encrypt blobs stored before encryption was on (a process that "
        "turns encryption on starts a round at once)",
    )


class MetadataSettings(BaseModel):
    url: str | None = Field(
        None, description="SQLAlchemy database URL (default: SQLite in DATA_DIR)"
    )
    read_cache: bool = Field(
        True,
        description="keep hot reads (manifests, tag lists, registry switches, Basic logins) "
        "per thread, checked against the database's change counters once per request; off: "
        "every read is a query (to measure what the cache saves)",
    )


class RegistrySettings(BaseModel):
    default_name: str = Field(
        "dockyard", description="name of the registry that answers unknown hosts"
    )
    login_server: str | None = Field(
        None, description="login server of the default registry (default: the listen address)"
    )
    default_sku: Literal["Basic", "Standard", "Premium"] = Field(
        "Premium",
        description="the tier (ACR's SKU: its limits and features) of registries when they are "
        "created; change one later with `dockyard registry update --sku`",
    )
    domain: str | None = Field(
        None,
        description="registries created through the management API log in at NAME.DOMAIN "
        "(default: NAME.localhost with the listen port); az's ACR suffix for this server",
    )


class ManagementSettings(BaseModel):
    """Where the management API places registries it did not create (the default one)."""

    subscription_id: str = Field(
        "00000000-0000-0000-0000-000000000000", description="the default registry's subscription"
    )
    tenant_id: str = Field(
        "00000000-0000-0000-0000-000000000000",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$",
        description="the tenant the server's identities belong to, as Entra ID names one: "
        "`az login --tenant` gives it, and its OpenID configuration and token endpoint are "
        "served under /TENANT/",
    )
    resource_group: str = Field("dockyard", description="the default registry's resource group")
    location: str = Field("local", description="the location registries report by default")


class PeerRegion(BaseModel):
    """Another Dockyard deployment this one replicates to and accepts changes from."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9]{1,50}$", description="the peer's region name, as it names itself"
    )
    url: str = Field(
        description="the peer's base URL (http(s)://HOST:PORT): its /_dockyard/replication/"
    )


class RegionSettings(BaseModel):
    """This deployment as one region of a geo-replicated registry (docs/geo-replication.md)."""

    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9]{1,50}$",
        description="this deployment's region (default management.location): the home "
        "replication of its registries, and the name its peers know it by",
    )
    peers: list[PeerRegion] = Field(
        default_factory=list,
        description="the other regions ([[region.peers]] tables: name, url) a registry may "
        "replicate to",
    )
    peer_secret: SecretStr | None = Field(
        None,
        description="the credential every region of the deployment shares: sent to peers "
        "and required of them on /_dockyard/replication/ (DOCKYARD_REGION__PEER_SECRET)",
    )

    @model_validator(mode="after")
    def _distinct_peers(self) -> RegionSettings:
        names = [peer.name.lower() for peer in self.peers]
        if len(set(names)) != len(names):
            raise ValueError("region.peers names a region twice")
        if self.name is not None and self.name.lower() in names:
            raise ValueError("region.peers names this region itself")
        return self


class RouterNetwork(BaseModel):
    """Clients in `cidr` prefer the regions in `prefer`, in that order."""

    cidr: IPvAnyNetwork = Field(description="the clients' network")
    prefer: list[str] = Field(description="region names, most preferred first")


class RouterSettings(BaseModel):
    """`dockyard router`, the global endpoint in front of the regions [region] peers
    lists (docs/geo-replication.md, "Routing")."""

    prefer: list[str] = Field(
        default_factory=list,
        description="region names, most preferred first, for clients no router.networks "
        "entry names (default: the order of region.peers); regions left out come last",
    )
    networks: list[RouterNetwork] = Field(
        default_factory=list,
        description="[[router.networks]] tables (cidr, prefer): the order for clients in a "
        "network, the first that holds the client's address",
    )
    check_seconds: float = Field(
        1.0, gt=0, description="how often each region's /readyz and routing view are read"
    )
    blob_redirects: bool = Field(
        True,
        description="answer blob GETs with a 307 to the chosen region's URL (clients then "
        "fetch the bytes from the region); off: the router streams them",
    )


class RateLimitSettings(BaseModel):
    enabled: bool = Field(
        False,
        description="refuse requests past each registry's tier's rate limits (429 with "
        "Retry-After); counted per server process, best-effort",
    )
    per_minute: dict[
        Literal["DataplaneRead", "DataplaneWrite", "DataplaneDelete", "ListReferrers", "OAuth"],
        PositiveInt,
    ] = Field(
        default_factory=dict,
        description="requests per minute per registry that replace every tier's, by ACR's "
        "category (e.g. {DataplaneWrite = 600})",
    )


class UploadSettings(BaseModel):
    expiry_seconds: int = Field(
        24 * 3600, ge=60, description="idle upload sessions are removed after this long"
    )
    sweep_seconds: int = Field(600, ge=1, description="how often expired uploads are swept")


class GCSettings(BaseModel):
    enabled: bool = Field(
        True, description="collect garbage in the background (blobs no manifest references)"
    )
    interval_seconds: int = Field(3600, ge=1, description="how often garbage is collected")
    grace_seconds: int = Field(
        24 * 3600,
        ge=0,
        description="blobs pushed (or left unreferenced) more recently than this are kept, "
        "so a push whose manifest has not arrived yet keeps its blobs",
    )
    lock_share: float = Field(
        0.2,
        gt=0,
        le=1,
        description="the most of a collection's time spent holding the writers' lock; it "
        "pauses between batches for the rest, so pushes keep most of their rate (1: no "
        "pauses, the fastest collection)",
    )


class LifecycleSettings(BaseModel):
    interval_seconds: int = Field(
        300,
        ge=1,
        description="how often the background worker applies the image lifecycle: the "
        "retention policy, the soft delete policy's expiry and scheduled purges",
    )


class WorkerSettings(BaseModel):
    in_process: bool = Field(
        True,
        description="run background work (upload sweeps, garbage collection, the outbox) "
        "inside every server process; turn off when `dockyard worker` processes run it",
    )


class OutboxSettings(BaseModel):
    poll_seconds: float = Field(
        1.0, gt=0, description="how often the background worker looks for events to deliver"
    )
    idle_seconds: float = Field(
        30.0,
        gt=0,
        description="on PostgreSQL, which announces new events, the longest an idle "
        "consumer sleeps (its sleeps double from poll_seconds); an event wakes it at once",
    )
    retry_first_seconds: float = Field(
        5.0, gt=0, description="wait after a failed delivery (webhooks, ...): doubled per failure"
    )
    retry_max_seconds: float = Field(
        3600.0, gt=0, description="the longest wait between delivery attempts (never given up)"
    )


class WebhookSettings(BaseModel):
    timeout_seconds: float = Field(
        10.0, gt=0, description="a webhook POST without an answer by then fails (and is retried)"
    )


class AuditSettings(BaseModel):
    retention_days: int = Field(
        90, ge=1, description="days repository and login events are kept in the audit log"
    )
    flush_seconds: float = Field(
        1.0,
        gt=0,
        description="how often a server writes the pulls (and refused operations) it saw; "
        "a process killed meanwhile loses them",
    )
    buffer_rows: int = Field(
        10_000, ge=1, description="pulls a server keeps unwritten at most; more are dropped"
    )
    pulls: bool = Field(
        True,
        description="record every manifest pull (ACR's Pull events); off, a pull costs "
        "the server about a fifth less CPU (refused pulls are still recorded)",
    )


class TasksSettings(BaseModel):
    concurrency: int = Field(
        2, ge=1, description="runs (builds) one background process executes at once"
    )
    default_timeout_seconds: int = Field(
        600, ge=300, description="a run's timeout when its request names none (ACR's)"
    )
    max_source_bytes: int = Field(
        1024**3, ge=1, description="the largest build context an upload URL accepts"
    )
    storage_driver: Literal["vfs", "overlay"] = Field(
        "vfs", description="buildah's storage driver for a run's own storage (vfs works anywhere)"
    )
    url_minutes: int = Field(
        60, ge=1, description="how long an upload or log URL handed out by the API stays valid"
    )
    log_retention_days: int = Field(
        30, ge=1, description="days a run's log is kept after the run (ACR's 30)"
    )
    step_network: Literal["registry", "none", "host"] = Field(
        "registry",
        description="what RUN steps and cmd containers reach: this registry only "
        "(registry), nothing (none), or the server's whole network (host: an explicit "
        "opt-out for trusted builds)",
    )
    host_network_tasks: list[str] = Field(
        default_factory=list,
        description="tasks (REGISTRY/TASK) whose runs' steps get the server's whole network "
        "whatever step_network says: the per-task opt-out, granted by the administrator",
    )
    local_git_contexts: bool = Field(
        False,
        description="accept git repositories on the server's own disk (a path or file:// URL) "
        "as task contexts: for tests and development, never where others create tasks",
    )
    base_image_poll_seconds: float = Field(
        900.0,
        gt=0,
        description="how often the base images of tasks that live in other registries are "
        "looked up (those of this server's registries trigger at once on push)",
    )


class SbomSettings(BaseModel):
    registries: list[str] = Field(
        default_factory=list,
        description='registries (by name; "*" for every one) whose pushed images get '
        "SBOMs: their packages listed in the background after the push and stored as SPDX "
        "and CycloneDX referrers of the image",
    )

    def wanted(self, registry: str) -> bool:
        return "*" in self.registries or registry in self.registries


class MetricsSettings(BaseModel):
    enabled: bool = Field(True, description="serve /metrics in Prometheus' format")
    token: SecretStr | None = Field(
        None, description="if set, a scrape must send `Authorization: Bearer <token>`"
    )


class UpstreamSettings(BaseModel):
    insecure_hosts: list[str] = Field(
        default_factory=list,
        description="upstream registries (HOST or HOST:PORT) that import and cache rules may "
        "reach over plain HTTP when HTTPS fails (loopback hosts always may)",
    )


class OIDCIssuer(BaseModel):
    """An external OpenID Connect issuer (an enterprise IdP) whose access tokens
    `/oauth2/exchange` accepts, and, with a `portal_client_id`, whose users sign in to the
    portal; either way mapped to the Dockyard identity named by `claim`."""

    issuer: str = Field(description="the tokens' `iss`, exactly")
    jwks_url: str = Field(description="where the issuer publishes its signing keys (JWKS)")
    audiences: list[str] = Field(
        default_factory=lambda: [
            "https://containerregistry.azure.net",
            "https://management.azure.com",
        ],
        description="accepted `aud` values",
    )
    claim: str = Field("sub", description="claim whose value names the Dockyard identity")
    portal_client_id: str | None = Field(
        None,
        description="the portal's client id at this issuer: set, the portal's sign-in page "
        "offers this issuer's login (authorization code flow with PKCE); its redirect URI is "
        "https://HOST/portal/signin/oidc/callback",
    )
    portal_client_secret: SecretStr | None = Field(
        None,
        description="the portal's client secret at this issuer (sent as HTTP Basic to its "
        "token endpoint); none for a public client",
    )
    display_name: str | None = Field(
        None, description="the sign-in button's label (default: the issuer's host)"
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "profile", "email"],
        description="the scopes the portal's sign-in asks for",
    )


class AuthSettings(BaseModel):
    enabled: bool = Field(
        True,
        description="require logins (turn off only for a throwaway development registry)",
    )
    access_token_minutes: int = Field(20, ge=1, description="lifetime of access tokens")
    refresh_token_hours: int = Field(3, ge=1, description="lifetime of refresh tokens")
    secret_key_file: Path | None = Field(
        None,
        description="key that encrypts stored secrets (default: DATA_DIR/secret.key, made "
        "on first start); every node of a deployment needs the same one",
    )
    max_failed_logins: int = Field(
        10, ge=1, description="failed logins of one identity from one address before a lockout"
    )
    failed_login_window_seconds: int = Field(
        300, ge=1, description="the window in which failed logins are counted"
    )
    lockout_seconds: int = Field(
        300, ge=1, description="how long a locked-out identity and address are refused"
    )
    oidc: list[OIDCIssuer] = Field(
        default_factory=list,
        description="trusted OpenID Connect issuers for /oauth2/exchange ([[auth.oidc]] tables)",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", env_nested_delimiter="__")
    config_file: ClassVar[Path | None] = None

    data_dir: Path = Field(
        Path("data"),
        description="this node's own directory: the embedded default's database and blobs, "
        "the secret key unless auth.secret_key_file, the keys/ of `local:` encryption keys "
        "unless encryption.key_dir, a first start's admin-password, the worker processes' "
        "metrics/ (emptied at start: one directory per node), tls/ of --tls self-signed",
    )
    admin_password: SecretStr | None = Field(
        None,
        description="enable the default registry's admin user with this password at start "
        "(for scripts and CI: DOCKYARD_ADMIN_PASSWORD)",
    )
    server: ServerSettings = ServerSettings()
    tls: TLSSettings = TLSSettings()
    storage: StorageSettings = StorageSettings()
    metadata: MetadataSettings = MetadataSettings()
    encryption: EncryptionSettings = EncryptionSettings()
    registry: RegistrySettings = RegistrySettings()
    uploads: UploadSettings = UploadSettings()
    gc: GCSettings = GCSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    worker: WorkerSettings = WorkerSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    outbox: OutboxSettings = OutboxSettings()
    webhooks: WebhookSettings = WebhookSettings()
    auth: AuthSettings = AuthSettings()
    rate_limits: RateLimitSettings = RateLimitSettings()
    management: ManagementSettings = ManagementSettings()
    region: RegionSettings = RegionSettings()
    router: RouterSettings = RouterSettings()
    audit: AuditSettings = AuditSettings()
    sbom: SbomSettings = SbomSettings()
    metrics: MetricsSettings = MetricsSettings()
    tasks: TasksSettings = TasksSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.config_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls.config_file))
        return tuple(sources)

    @property
    def secret_key_path(self) -> Path:
        return self.auth.secret_key_file or self.data_dir / "secret.key"

    @property
    def key_root(self) -> Path:
        """The directory of `local:` key-encryption keys."""
        return (self.encryption.key_dir or self.data_dir / "keys").resolve()

    @property
    def database_url(self) -> str:
        return self.metadata.url or f"sqlite:///{(self.data_dir / 'dockyard.db').resolve()}"

    @property
    def blob_root(self) -> Path:
        return (self.storage.path or self.data_dir / "blobs").resolve()

    @property
    def default_login_server(self) -> str:
        return self.registry.login_server or self.server.listen

    @property
    def region_name(self) -> str:
        """This deployment's region: `[region] name`, else the management location."""
        return self.region.name or self.management.location

    @property
    def registry_domain(self) -> str:
        """What follows `NAME.` in the login server of a registry made by the API."""
        if self.registry.domain:
            return self.registry.domain
        _, _, port = self.server.listen.rpartition(":")
        return f"localhost:{port}" if port.isdigit() else "localhost"


def every_setting(
    model: type[BaseModel] = Settings, prefix: str = ""
) -> Iterator[tuple[str, FieldInfo]]:
    """Each leaf setting as its dotted TOML key (`registry.domain`) and its field: the
    one list that `serve --help` prints, so the reference cannot fall behind the model."""
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from every_setting(annotation, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults < file < environment < `overrides` (flags)."""
    source = type("FileSettings", (Settings,), {"config_file": config_file})
    return Settings.model_validate(source(**overrides).model_dump())
