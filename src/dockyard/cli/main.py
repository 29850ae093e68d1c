"""Entry point of the `dockyard` command."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from dockyard.cli import (
    access,
    garbage,
    health,
    migration,
    repository,
)
from dockyard.cli.local import OFFLINE, ONLINE, ConfigOption, DatabaseOption, DataDirOption
from dockyard.features import FEATURES

app = typer.Typer(no_args_is_help=True, help="Dockyard: a self-hosted container registry.")
db = typer.Typer(no_args_is_help=True, help="Database schema.")
app.add_typer(db, name="db", rich_help_panel=OFFLINE)
# Online: over the server's public APIs, as az reaches Azure.
repository.register(app)
app.command("check-health", rich_help_panel=ONLINE)(health.check_health)
# Offline: server administration on the server's own database and storage.
access.register(app)
migration.register(app)
garbage.register(app)
# Each feature's verbs (`dockyard.features`).
for feature in FEATURES:
    feature.cli(app)


class TLSMode(StrEnum):
    self_signed = "self-signed"


class StorageKind(StrEnum):
    filesystem = "filesystem"
    s3 = "s3"


def _overrides(**flags: Any) -> dict[str, Any]:
    """Nested settings from flags that were given; flags left out do not override."""
    nested: dict[str, Any] = {}
    for key, value in flags.items():
        if value is None:
            continue
        section, _, field = key.partition("__")
        if field:
            nested.setdefault(section, {})[field] = value
        else:
            nested[section] = value
    return nested


def _issuers(values: list[str] | None) -> list[dict[str, str]] | None:
    if not values:
        return None
    issuers = []
    for value in values:
        issuer, _, jwks_url = value.strip().partition(" ")
        if not issuer or not jwks_url.strip():
            raise typer.BadParameter(f"expected 'ISSUER JWKS_URL', got {value!r}")
        issuers.append({"issuer": issuer, "jwks_url": jwks_url.strip()})
    return issuers


def _rate_limits(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    limits = {}
    for value in values:
        category, _, number = value.partition("=")
        if not number:
            raise typer.BadParameter(f"expected CATEGORY=N, got {value!r}")
        limits[category.strip()] = number.strip()
    return limits


def _settings_reference() -> str:
    """Every setting with its TOML key, environment variable, default and meaning, for the
    end of `serve --help`: flags exist for the common ones only, and this list, read from
    the settings model, covers the rest without falling behind it."""
    from pydantic_core import PydanticUndefined
    from rich.markup import escape

    from dockyard.settings import every_setting

    entries = ["[bold]Every setting[/bold] (TOML key, environment variable, default):"]
    for key, field in every_setting():
        variable = "DOCKYARD_" + key.upper().replace(".", "__")
        if field.default_factory is not None:
            default = "computed"
        else:
            default = "none" if field.default in (None, PydanticUndefined) else field.default
        entries.append(escape(f"{key} ({variable}; default {default}): {field.description}"))
    return "\n\n".join(entries)


class _ServeCommand(TyperCommand):
    """`serve --help` ends with `_settings_reference()`, made only when help is shown:
    the settings model is too slow to import for every `dockyard` command."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self.epilog = _settings_reference()
        super().format_help(ctx, formatter)


@app.command(cls=_ServeCommand, rich_help_panel=OFFLINE)
def serve(
    config: ConfigOption = None,
    listen: Annotated[
        str | None,
        typer.Option(help="HOST:PORT to listen on (server.listen; default localhost:5000)."),
    ] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes (server.workers; default one per CPU).")
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="debug, info, warning or error (server.log_level; default info)."),
    ] = None,
    registry_name: Annotated[
        str | None,
        typer.Option(
            help="Name of the default registry (registry.default_name; default dockyard)."
        ),
    ] = None,
    login_server: Annotated[
        str | None,
        typer.Option(
            help="Login server of the default registry (registry.login_server; "
            "default the listen address)."
        ),
    ] = None,
    database_url: DatabaseOption = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="This deployment's region, its registries' home replication "
            "(region.name; default management.location)."
        ),
    ] = None,
    storage_path: Annotated[
        Path | None, typer.Option(help="Blob directory (storage.path; default DATA_DIR/blobs).")
    ] = None,
    storage: Annotated[
        StorageKind | None,
        typer.Option(
            help="Where blobs live: filesystem or s3, an S3-compatible bucket "
            "(storage.kind; default filesystem)."
        ),
    ] = None,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(help="S3 endpoint URL (storage.endpoint; default AWS S3 in the region)."),
    ] = None,
    s3_bucket: Annotated[
        str | None,
        typer.Option(help="S3 bucket; a key prefix per registry (storage.bucket; default none)."),
    ] = None,
    s3_region: Annotated[
        str | None, typer.Option(help="S3 region (storage.region; default us-east-1).")
    ] = None,
    s3_access_key: Annotated[
        str | None,
        typer.Option(help="S3 access key (storage.access_key; default the AWS credential chain)."),
    ] = None,
    s3_secret_key: Annotated[
        str | None,
        typer.Option(
            help="S3 secret key (storage.secret_key; prefer the environment: "
            "DOCKYARD_STORAGE__SECRET_KEY)."
        ),
    ] = None,
    s3_path_style: Annotated[
        bool | None,
        typer.Option(
            "--s3-path-style/--no-s3-path-style",
            help="Put the bucket in the URL path, as SeaweedFS and MinIO expect "
            "(storage.path_style; default off).",
        ),
    ] = None,
    s3_redirect: Annotated[
        bool | None,
        typer.Option(
            "--s3-redirect/--no-s3-redirect",
            help="Answer blob GETs with a 307 to a pre-signed URL of the bucket, which "
            "clients must be able to reach (storage.redirect; default off).",
        ),
    ] = None,
    nginx_offload: Annotated[
        str | None,
        typer.Option(
            "--nginx-offload",
            metavar="PATH",
            help="Behind nginx: answer blob GETs with X-Accel-Redirect to this internal "
            "location, which fetches the bytes from the bucket (storage.nginx_offload, "
            "e.g. /_blob/; docs/deploy.md has nginx's side).",
        ),
    ] = None,
    upload_sweep: Annotated[
        int | None,
        typer.Option(
            help="Seconds between sweeps for expired uploads (uploads.sweep_seconds; default 600)."
        ),
    ] = None,
    upload_expiry: Annotated[
        int | None,
        typer.Option(
            help="Seconds after which idle upload sessions are removed "
            "(uploads.expiry_seconds; default 86400)."
        ),
    ] = None,
    gc: Annotated[
        bool | None,
        typer.Option(
            "--gc/--no-gc",
            help="Collect garbage in the background: blobs no manifest references "
            "(gc.enabled; default on).",
        ),
    ] = None,
    gc_interval: Annotated[
        int | None,
        typer.Option(
            help="Seconds between garbage collections (gc.interval_seconds; default 3600)."
        ),
    ] = None,
    gc_grace: Annotated[
        int | None,
        typer.Option(
            help="Seconds a blob pushed, or left unreferenced, is kept before garbage "
            "collection may remove it (gc.grace_seconds; default 86400).",
        ),
    ] = None,
    in_process_worker: Annotated[
        bool | None,
        typer.Option(
            "--in-process-worker/--no-in-process-worker",
            help="Run background work (upload sweeps, garbage collection, the outbox) in the "
            "server processes (worker.in_process; default on). Turn off when `dockyard "
            "worker` runs it.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            help="PEM certificate (chain) to serve HTTPS with (tls.cert_file; default none)."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option(help="PEM private key of --tls-cert (tls.key_file; default none)."),
    ] = None,
    tls: Annotated[
        TLSMode | None,
        typer.Option(
            help="self-signed: HTTPS with a development certificate made and kept in DATA_DIR/tls "
            "(tls.self_signed; default off)."
        ),
    ] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            help="Address or CIDR of a reverse proxy whose X-Forwarded-For is believed; repeat "
            "for several (server.trusted_proxies; default none)."
        ),
    ] = None,
    max_failed_logins: Annotated[
        int | None,
        typer.Option(
            help="Failed logins of one identity from one address before it is locked out "
            "(auth.max_failed_logins; default 10)."
        ),
    ] = None,
    failed_login_window: Annotated[
        int | None,
        typer.Option(
            help="Seconds in which failed logins are counted "
            "(auth.failed_login_window_seconds; default 300)."
        ),
    ] = None,
    lockout: Annotated[
        int | None,
        typer.Option(
            help="Seconds a locked-out identity and address are refused "
            "(auth.lockout_seconds; default 300)."
        ),
    ] = None,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth/--no-auth",
            help="Require logins (auth.enabled; default on). --no-auth opens the registry "
            "to everyone: for throwaway development registries only.",
        ),
    ] = None,
    admin_password: Annotated[
        str | None,
        typer.Option(
            help="Enable the default registry's admin user with this password "
            "(admin_password; prefer the environment: DOCKYARD_ADMIN_PASSWORD).",
        ),
    ] = None,
    access_token_minutes: Annotated[
        int | None,
        typer.Option(help="Lifetime of access tokens (auth.access_token_minutes; default 20)."),
    ] = None,
    refresh_token_hours: Annotated[
        int | None,
        typer.Option(help="Lifetime of refresh tokens (auth.refresh_token_hours; default 3)."),
    ] = None,
    oidc_issuer: Annotated[
        list[str] | None,
        typer.Option(
            help="Trust an OpenID Connect issuer at /oauth2/exchange: 'ISSUER JWKS_URL', "
            "repeatable (auth.oidc; audiences and claim in the config file).",
        ),
    ] = None,
    insecure_upstream: Annotated[
        list[str] | None,
        typer.Option(
            help="Upstream registry HOST[:PORT] that cache rules and import may reach over "
            "plain HTTP when HTTPS fails; repeatable (upstream.insecure_hosts; default none: "
            "loopback hosts only).",
        ),
    ] = None,
    secret_key_file: Annotated[
        Path | None,
        typer.Option(
            help="Key that encrypts stored secrets (auth.secret_key_file; default "
            "DATA_DIR/secret.key); every node needs the same one."
        ),
    ] = None,
    default_sku: Annotated[
        str | None,
        typer.Option(
            help="Tier of registries when they are created: Basic, Standard or Premium "
            "(registry.default_sku; default Premium)."
        ),
    ] = None,
    rate_limits: Annotated[
        bool | None,
        typer.Option(
            "--rate-limits/--no-rate-limits",
            help="Answer requests past the registry's tier's rate limits with 429, per "
            "server process (rate_limits.enabled; default off).",
        ),
    ] = None,
    rate_limit: Annotated[
        list[str] | None,
        typer.Option(
            help="CATEGORY=N: N requests per minute per registry in that category "
            "(DataplaneRead, DataplaneWrite, DataplaneDelete, ListReferrers, OAuth) instead "
            "of the tiers' limits; repeatable (rate_limits.per_minute; default the tiers').",
        ),
    ] = None,
) -> None:
    """Run the registry server.

    Settings come from flags, then DOCKYARD_* environment variables (nested with '__',
    e.g. DOCKYARD_SERVER__LISTEN), then the --config file, then defaults.
    """
    from dockyard.server import SchemaOutdated, SecretKeyNotShared
    from dockyard.server import serve as run
    from dockyard.settings import load_settings

    settings = load_settings(
        config,
        **_overrides(
            server__listen=listen,
            data_dir=data_dir,
            server__workers=workers,
            server__log_level=log_level,
            registry__default_name=registry_name,
            registry__login_server=login_server,
            metadata__url=database_url,
            region__name=region,
            storage__path=storage_path,
            storage__kind=storage.value if storage else None,
            storage__endpoint=s3_endpoint,
            storage__bucket=s3_bucket,
            storage__region=s3_region,
            storage__access_key=s3_access_key,
            storage__secret_key=s3_secret_key,
            storage__path_style=s3_path_style,
            storage__redirect=s3_redirect,
            storage__nginx_offload=nginx_offload,
            uploads__expiry_seconds=upload_expiry,
            uploads__sweep_seconds=upload_sweep,
            gc__enabled=gc,
            gc__interval_seconds=gc_interval,
            gc__grace_seconds=gc_grace,
            worker__in_process=in_process_worker,
            tls__cert_file=tls_cert,
            tls__key_file=tls_key,
            tls__self_signed=True if tls is TLSMode.self_signed else None,
            server__trusted_proxies=trusted_proxy or None,
            auth__max_failed_logins=max_failed_logins,
            auth__failed_login_window_seconds=failed_login_window,
            auth__lockout_seconds=lockout,
            auth__enabled=auth,
            admin_password=admin_password,
            auth__access_token_minutes=access_token_minutes,
            auth__refresh_token_hours=refresh_token_hours,
            auth__secret_key_file=secret_key_file,
            upstream__insecure_hosts=insecure_upstream or None,
            auth__oidc=_issuers(oidc_issuer),
            registry__default_sku=default_sku,
            rate_limits__enabled=rate_limits,
            rate_limits__per_minute=_rate_limits(rate_limit),
        ),
    )
    try:
        run(settings)
    except (SchemaOutdated, SecretKeyNotShared) as exc:
        typer.echo(f"dockyard serve: {exc}", err=True)
        raise typer.Exit(1) from None


@app.command(rich_help_panel=OFFLINE)
def worker(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Run the background work (upload sweeps, garbage collection, the outbox's consumers)
    in this process.

    For scale-out deployments: run one or more beside the servers, and set
    worker.in_process = false on the servers. Several workers share the outbox.
    Settings as for `dockyard serve` (the same config file and DOCKYARD_* variables).
    """
    from dockyard.server import SchemaOutdated
    from dockyard.settings import load_settings
    from dockyard.worker import run_worker

    settings = load_settings(config, **_overrides(data_dir=data_dir, metadata__url=database_url))
    try:
        run_worker(settings)
    except SchemaOutdated as exc:
        typer.echo(f"dockyard worker: {exc}", err=True)
        raise typer.Exit(1) from None


@db.command("upgrade")
def db_upgrade(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Apply the database migrations this version needs."""
    from dockyard.metadata import migrate
    from dockyard.metadata.engine import make_engine
    from dockyard.settings import load_settings

    settings = load_settings(config, **_overrides(data_dir=data_dir, metadata__url=database_url))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    try:
        migrate.upgrade(engine)
        typer.echo(f"database at revision {migrate.current_revision(engine)}")
    finally:
        engine.dispose()
