"""`dockyard trust policy set|show|enable|disable`, `trust store add|list|remove`,
`trust verify` and `trust check` (offline: a registry's trust policy and stores, on the
server's database), and `dockyard sign` (online: a Notation JWS signature made with the
user's key and certificate, pushed beside the image as a referrer, as `notation sign`
does)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from dockyard.cli.local import (
    OFFLINE,
    OFFLINE_EPILOG,
    ONLINE,
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    fail,
    run_for_registry,
)
from dockyard.cli.remote import (
    CAFileOption,
    InsecureOption,
    NameOption,
    PasswordOption,
    RemoteRegistry,
    UsernameOption,
)

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services

trust = typer.Typer(
    no_args_is_help=True,
    help="A registry's signature trust policy and trust stores (Notation-style).",
)
policy = typer.Typer(no_args_is_help=True, help="The trust policy document and its switch.")
store = typer.Typer(no_args_is_help=True, help="Trust stores: CA certificates or cosign keys.")
trust.add_typer(policy, name="policy")
trust.add_typer(store, name="store")


class SignatureFormat(StrEnum):
    jws = "jws"
    cose = "cose"


StoreType = Annotated[
    str,
    typer.Option(
        "--type",
        "-t",
        help="ca or signingAuthority (CA certificates, Notation) or cosign (public keys).",
    ),
]
StoreName = Annotated[str, typer.Option("--name", help="The store's name, e.g. acme-rockets.")]


def _document(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        fail(f"cannot read a JSON trust policy from {path}: {exc}")


@policy.command("set", epilog=OFFLINE_EPILOG)
def policy_set(
    file: Annotated[Path, typer.Argument(help="The trust policy document (JSON).")],
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Also turn enforcement on or off.")
    ] = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Replace the registry's trust policy document (checked first: its stores must exist)."""
    document = _document(file)

    def act(services: Services, record: RegistryRecord) -> None:
        done = services.trust.set_policy(record, document, enable)
        console.print(f"trust policy set (version {done.version}), enforcement {_on(done.enabled)}")

    run_for_registry(registry, config, data_dir, database_url, act)


def _on(enabled: bool) -> str:
    return "on" if enabled else "off"


@policy.command("show", epilog=OFFLINE_EPILOG)
def policy_show(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The document as stored, and whether pulls are checked against it."""

    def act(services: Services, record: RegistryRecord) -> None:
        found = services.trust.configuration(record.id)
        if found.policy is None:
            console.print("no trust policy")
            return
        print(json.dumps({"enabled": found.enabled, "document": found.policy.document}, indent=2))

    run_for_registry(registry, config, data_dir, database_url, act)


def _switch(
    enabled: bool,
    registry: str | None,
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    def act(services: Services, record: RegistryRecord) -> None:
        services.trust.set_enabled(record, enabled)
        console.print(f"trust policy enforcement {_on(enabled)}")

    run_for_registry(registry, config, data_dir, database_url, act)


@policy.command("enable", epilog=OFFLINE_EPILOG)
def policy_enable(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Refuse pulls the policy does not allow (run `dockyard trust check` first)."""
    _switch(True, registry, config, data_dir, database_url)


@policy.command("disable", epilog=OFFLINE_EPILOG)
def policy_disable(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Stop checking pulls; the document is kept."""
    _switch(False, registry, config, data_dir, database_url)


@store.command("add", epilog=OFFLINE_EPILOG)
def store_add(
    files: Annotated[
        list[Path], typer.Argument(help="PEM (or DER) certificates, or PEM public keys.")
    ],
    kind: StoreType,
    name: StoreName,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Add CA certificates or public keys to a trust store (made if new)."""
    try:
        materials = [f.read_bytes() for f in files]
    except OSError as exc:
        fail(str(exc))

    def act(services: Services, record: RegistryRecord) -> None:
        count = 0
        for material in materials:
            count = services.trust.add_store(record, kind, name, material)
        console.print(f"{kind}:{name} holds {count}")

    run_for_registry(registry, config, data_dir, database_url, act)


@store.command("list", epilog=OFFLINE_EPILOG)
def store_list(
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """The registry's trust stores and what each holds."""
    from dockyard.signing.trust import store_entries

    def act(services: Services, record: RegistryRecord) -> None:
        table = Table("STORE", "ENTRIES", "UPDATED")
        for row in services.trust.configuration(record.id).stores:
            entries = store_entries(row)
            table.add_row(
                f"{row.type}:{row.name}", "\n".join(entries), f"{row.updated_at:%Y-%m-%d %H:%M:%S}Z"
            )
        console.print(table)

    run_for_registry(registry, config, data_dir, database_url, act)


@store.command("remove", epilog=OFFLINE_EPILOG)
def store_remove(
    kind: StoreType,
    name: StoreName,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Remove a trust store (refused while the policy names it)."""

    def act(services: Services, record: RegistryRecord) -> None:
        if not services.trust.remove_store(record, kind, name):
            fail(f"no trust store {kind}:{name}")
        console.print(f"removed {kind}:{name}")

    run_for_registry(registry, config, data_dir, database_url, act)


@trust.command("check", epilog=OFFLINE_EPILOG)
def check(
    file: Annotated[
        Path | None, typer.Argument(help="A policy document to try (default: the stored one).")
    ] = None,
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Dry run: the stored images the policy would refuse at pull, with why. Exits 1 if
    there is any."""
    document = None if file is None else _document(file)
    refused = 0

    def act(services: Services, record: RegistryRecord) -> None:
        nonlocal refused
        table = Table("IMAGE", "TAGS", "POLICY", "WHY")
        for refusal in services.trust.refusals(record, document):
            refused += 1
            table.add_row(
                f"{refusal.repository}@{refusal.digest}",
                ", ".join(refusal.tags),
                f"{refusal.policy} ({refusal.level})",
                refusal.reason,
            )
        if refused:
            console.print(table)
        console.print(f"{refused} image(s) would be refused")

    run_for_registry(registry, config, data_dir, database_url, act)
    if refused:
        raise typer.Exit(1)


@trust.command("verify", epilog=OFFLINE_EPILOG)
def verify(
    image: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST.")],
    registry: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """An image's signatures, each verified: under the policy's statement for its
    repository, else against every trust store of the registry. Exits 1 unless the
    image would be served."""
    repository, reference = _image(image)
    served = True

    def act(services: Services, record: RegistryRecord) -> None:
        nonlocal served
        found = services.trust.inspect(record, repository, reference)
        statement = found.statement
        console.print(f"{repository}@{found.digest} under {statement.name!r} ({statement.level})")
        table = Table("KIND", "SIGNATURE", "SIGNER", "RESULT")
        for check in found.checks:
            problem = check.integrity or check.authenticity
            result = problem or (
                f"expired: {', '.join(check.expired)}" if check.expired else "verified"
            )
            table.add_row(check.kind, check.source, check.signer or "", result)
        if found.checks:
            console.print(table)
        served = found.verdict.allowed
        console.print(("served: " if served else "refused: ") + found.verdict.reason)

    run_for_registry(registry, config, data_dir, database_url, act)
    if not served:
        raise typer.Exit(1)


def _image(image: str) -> tuple[str, str]:
    """`repo:tag` or `repo@digest` -> (repository, reference)."""
    repository, at, reference = image.partition("@")
    if not at:
        repository, colon, reference = image.rpartition(":")
        if not colon or "/" in reference:
            fail(f"{image!r} names no tag: give REPOSITORY:TAG or REPOSITORY@DIGEST")
    return repository, reference


def sign(
    image: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST to sign.")],
    key: Annotated[Path, typer.Option("--key", help="The signing key (PEM, unencrypted).")],
    certificate: Annotated[
        Path,
        typer.Option(
            "--certificate", help="Its certificate chain (PEM): leaf first, up to the root."
        ),
    ],
    name: NameOption,
    expiry_days: Annotated[
        int | None, typer.Option(min=1, help="The signature expires after this many days.")
    ] = None,
    signature_format: Annotated[
        SignatureFormat, typer.Option(help="The envelope: jws (notation's default) or cose.")
    ] = SignatureFormat.jws,
    username: UsernameOption = None,
    password: PasswordOption = None,
    insecure: InsecureOption = False,
    ca_file: CAFileOption = None,
) -> None:
    """Sign an image with Notation's JWS envelope and push the signature as a referrer;
    prints the signature manifest's digest."""
    from dockyard.signing.signer import SignatureRequest, load_signer

    try:
        signer = load_signer(key.read_bytes(), certificate.read_bytes())
    except (OSError, ValueError) as exc:
        fail(str(exc))
    repository, reference = _image(image)
    scope = f"repository:{repository}:pull,push"
    now = datetime.now(UTC)
    with RemoteRegistry(name, username, password, insecure, ca_file) as remote:
        head = remote.call(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scope,
            headers={"Accept": ", ".join(_ACCEPT)},
        )
        request = SignatureRequest(
            media_type=head.headers["Content-Type"].split(";")[0],
            digest=head.headers["Docker-Content-Digest"],
            size=int(head.headers["Content-Length"]),
            signing_time=now,
            expiry=None if expiry_days is None else now + timedelta(days=expiry_days),
        )
        signature = signer.sign(request, signature_format is SignatureFormat.cose)
        for blob in signature.blobs:
            _push_blob(remote, repository, scope, blob)
        remote.call(
            "PUT",
            f"/v2/{repository}/manifests/{signature.digest}",
            scope,
            content=signature.manifest,
            headers={"Content-Type": signature.media_type},
        )
    console.print(signature.digest)


_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def _push_blob(remote: RemoteRegistry, repository: str, scope: str, data: bytes) -> None:
    """A monolithic upload (POST then PUT), unless the blob is there already."""
    from dockyard.core.digests import digest_bytes

    digest = digest_bytes(data, "sha256")
    if remote.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope).status_code == 200:
        return
    started = remote.call("POST", f"/v2/{repository}/blobs/uploads/", scope)
    location = started.headers["Location"]
    remote.call(
        "PUT",
        location,
        scope,
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def register(app: typer.Typer) -> None:
    app.add_typer(trust, name="trust", rich_help_panel=OFFLINE, epilog=OFFLINE_EPILOG)
    app.command("sign", rich_help_panel=ONLINE)(sign)
