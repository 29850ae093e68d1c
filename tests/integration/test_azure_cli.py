"""Microsoft's Azure CLI (`pip install azure-cli`, nothing else) against a real Dockyard
TLS server whose certificate is in `REQUESTS_CA_BUNDLE`: cloud registration, a service
principal's login, then `az acr` for registries, repositories, referrers, import,
webhooks, tokens and scope maps, network rules, policies, cache rules and the admin
credentials, each command as a user types it, its JSON output checked.

The CLI lives in a virtual environment of its own, outside the repository
(`~/.cache/dockyard/azure-cli-VERSION`, made once and reused); the test fails if it cannot
be installed. `az` talks to loopback only: its configuration directory is the test's,
with instance discovery (login.microsoftonline.com), telemetry, surveys and upgrades off."""

from __future__ import annotations

import base64
import fcntl
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import images
import pytest
from conftest import RegistryServer, free_port, printed
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_tasks_platforms import push_index

from dockyard.encryption.local_keys import LocalKeyProvider

pytestmark = pytest.mark.slow

AZURE_CLI_VERSION = "2.91.0"
INSTALL_TIMEOUT = 1200.0
AZ_TIMEOUT = 120.0
ADMIN_PASSWORD = "az-admin-password-0123456789"
PEER_SECRET = "az-peer-secret-0123456789"
PEER_PORT = free_port()  # the peer region eastus, started by test_replications
CACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "dockyard"
    / f"azure-cli-{AZURE_CLI_VERSION}"
)


def install_azure_cli() -> Path:
    """`az` from the cached virtual environment, installed first if it is not there (or
    an earlier install did not finish), under a lock so parallel runs install once."""
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    done = CACHE / "installed"
    with (CACHE.parent / f"{CACHE.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(CACHE, ignore_errors=True)
            for step in (
                [sys.executable, "-m", "venv", str(CACHE)],
                [str(CACHE / "bin" / "pip"), "install", "-q", f"azure-cli=={AZURE_CLI_VERSION}"],
            ):
                try:
                    result = subprocess.run(
                        step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                    )
                except subprocess.TimeoutExpired:
                    pytest.fail(f"{' '.join(step)} took more than {INSTALL_TIMEOUT:.0f}s")
                if result.returncode != 0:
                    pytest.fail(
                        f"cannot install azure-cli {AZURE_CLI_VERSION}: {' '.join(step)}\n"
                        f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
                    )
            done.write_text(AZURE_CLI_VERSION)
    return CACHE / "bin" / "az"


class AzureCli:
    """`az` with a configuration directory of its own, trusting `ca_file`."""

    def __init__(self, executable: Path, config_dir: Path, ca_file: Path) -> None:
        self.executable = executable
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AZURE_", "DOCKYARD_")) and "proxy" not in k.lower()
        }
        self.env |= {
            "AZURE_CONFIG_DIR": str(config_dir),
            "REQUESTS_CA_BUNDLE": str(ca_file),
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            # Anything but loopback goes to a proxy that refuses: nothing leaves the host.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
        }

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.executable), *args, "--output", "json"],
            capture_output=True,
            text=True,
            timeout=AZ_TIMEOUT,
            env=self.env,
            check=False,
        )

    def __call__(self, *args: str) -> Any:
        """The command's JSON output (None when it prints nothing); it must succeed."""
        result = self.run(*args)
        shown = " ".join(
            "***" if before in ("-p", "--password") else arg
            for before, arg in zip(("", *args), args, strict=False)
        )
        assert result.returncode == 0, f"az {shown}\n{result.stdout}{result.stderr}"
        return json.loads(result.stdout) if result.stdout.strip() else None


class WebhookReceiver(http.server.ThreadingHTTPServer):
    """A loopback endpoint that answers every webhook POST with 200."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    base = tmp_path_factory.mktemp("azure-cli")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        tls=True,
        args=(),
        env={
            "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DOCKYARD_REGION__PEERS": json.dumps(
                [{"name": "eastus", "url": f"http://127.0.0.1:{PEER_PORT}"}]
            ),
            "DOCKYARD_REGION__PEER_SECRET": PEER_SECRET,
        },
    ).start() as running:
        yield running


@pytest.fixture(scope="module")
def az(server: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> AzureCli:
    """az, logged in to the server's cloud as a service principal with the Owner role."""
    cli = AzureCli(install_azure_cli(), tmp_path_factory.mktemp("azure-config"), server.ca_file)
    # Instance discovery would ask login.microsoftonline.com about this authority.
    cli(
        "config",
        "set",
        "core.instance_discovery=false",
        "core.collect_telemetry=false",
        "core.survey_message=false",
        "auto-upgrade.enable=no",
    )
    owner = server.admin("identity", "create", "az-owner", "--server-role", "Owner")
    client_id, secret, tenant = (printed(owner, key) for key in ("username", "secret", "tenant"))

    cli("cloud", "register", "-n", "dockyard", "--endpoint-resource-manager", server.url)
    cli("cloud", "set", "-n", "dockyard")
    refused = cli.run(
        "login", "--service-principal", "-u", client_id, "-p", "wrong", "--tenant", tenant
    )
    assert refused.returncode != 0
    assert "incorrect user name or password" in refused.stderr
    [account] = cli(
        "login", "--service-principal", "-u", client_id, "-p", secret, "--tenant", tenant
    )
    assert account["tenantId"] == tenant and account["user"]["name"] == client_id
    assert account["cloudName"] == "dockyard" and account["state"] == "Enabled"
    return cli


@pytest.fixture(scope="module")
def image(server: RegistryServer) -> images.Image:
    """busybox as hello/app:v1 and other:v1, and a signature whose subject it is."""
    image = images.busybox_image()
    signature = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": images.descriptor(images.OCI_EMPTY, images.EMPTY_JSON),
            "layers": [images.descriptor("application/octet-stream", b"signed")],
            "subject": images.descriptor(images.OCI_MANIFEST, image.manifest),
        }
    )
    with httpx.Client(
        base_url=server.url, verify=server.verify, auth=("dockyard", ADMIN_PASSWORD), timeout=30
    ) as http:

        def push_blob(repository: str, data: bytes) -> None:
            digest = images.sha256_digest(data)
            location = http.post(f"/v2/{repository}/blobs/uploads/").headers["Location"]
            done = http.put(location, params={"digest": digest}, content=data)
            assert done.status_code == 201, done.text

        def push_manifest(repository: str, reference: str, body: bytes) -> None:
            headers = {"Content-Type": images.OCI_MANIFEST}
            done = http.put(
                f"/v2/{repository}/manifests/{reference}", content=body, headers=headers
            )
            assert done.status_code == 201, done.text

        for repository in ("hello/app", "other"):
            for data in image.blobs.values():
                push_blob(repository, data)
            push_manifest(repository, "v1", image.manifest)
        for data in (images.EMPTY_JSON, b"signed"):
            push_blob("hello/app", data)
        push_manifest("hello/app", images.sha256_digest(signature), signature)
    return image


def test_registries(az: AzureCli, server: RegistryServer) -> None:
    [listed] = az("acr", "list")
    assert listed["name"] == "dockyard" and listed["loginServer"] == server.host
    shown = az("acr", "show", "-n", "dockyard")
    assert shown["id"] == listed["id"] and shown["sku"]["name"] == "Premium"
    usage = {u["name"]: u for u in az("acr", "show-usage", "-n", "dockyard")["value"]}
    assert usage["Size"]["unit"] == "Bytes" and usage["Webhooks"]["currentValue"] == 0
    created = az("acr", "create", "-n", "azbuilds", "-g", "dockyard", "--sku", "Standard")
    assert created["loginServer"] == f"azbuilds.localhost:{server.port}"
    updated = az("acr", "update", "-n", "azbuilds", "--anonymous-pull-enabled", "true")
    assert updated["anonymousPullEnabled"] is True
    az("acr", "delete", "-n", "azbuilds", "--yes")
    assert [r["name"] for r in az("acr", "list")] == ["dockyard"]
    login = az("acr", "login", "-n", "dockyard", "--expose-token")
    assert login["loginServer"] == server.host
    assert login["username"] == "00000000-0000-0000-0000-000000000000"
    assert login["accessToken"] == login["refreshToken"]
    # The refresh token az printed is a password docker would use.
    with httpx.Client(base_url=server.url, verify=server.verify) as http:
        token = http.post(
            "/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "service": server.host,
                "scope": "registry:catalog:*",
                "refresh_token": login["refreshToken"],
            },
        )
        assert token.status_code == 200, token.text


def test_repositories_and_referrers(az: AzureCli, image: images.Image) -> None:
    assert az("acr", "repository", "list", "-n", "dockyard") == ["hello/app", "other"]
    repository = az("acr", "repository", "show", "-n", "dockyard", "--repository", "hello/app")
    assert (repository["imageName"], repository["tagCount"]) == ("hello/app", 1)
    tag = az("acr", "repository", "show", "-n", "dockyard", "--image", "hello/app:v1")
    assert tag["digest"] == image.digest
    [detail] = az(
        "acr", "repository", "show-tags", "-n", "dockyard", "--repository", "hello/app", "--detail"
    )
    assert (detail["name"], detail["digest"]) == ("v1", image.digest)
    manifests = az(
        "acr", "repository", "show-manifests", "-n", "dockyard", "--repository", "hello/app"
    )
    assert {m["digest"]: m["tags"] for m in manifests}[image.digest] == ["v1"]
    locked = az(
        "acr",
        "repository",
        "update",
        "-n",
        "dockyard",
        "--image",
        "hello/app:v1",
        "--write-enabled",
        "false",
    )
    assert locked["changeableAttributes"]["writeEnabled"] is False
    [referrer] = az("acr", "manifest", "list-referrers", "-r", "dockyard", "-n", "hello/app:v1")[
        "manifests"
    ]
    assert referrer["artifactType"] == "application/vnd.example.signature"


def test_import_and_delete(az: AzureCli, server: RegistryServer, image: images.Image) -> None:
    registry_id = az("acr", "show", "-n", "dockyard")["id"]
    az(
        "acr",
        "import",
        "-n",
        "dockyard",
        "--source",
        "other:v1",
        "--registry",
        registry_id,
        "-t",
        "imported:v1",
    )
    az(
        "acr",
        "import",
        "-n",
        "dockyard",
        "--source",
        f"{server.host}/other:v1",
        "-t",
        "imported:v2",
    )
    tags = az("acr", "repository", "show-tags", "-n", "dockyard", "--repository", "imported")
    assert tags == ["v1", "v2"]
    az("acr", "repository", "untag", "-n", "dockyard", "--image", "imported:v2")
    deleted = az(
        "acr", "repository", "delete", "-n", "dockyard", "--repository", "imported", "--yes"
    )
    assert deleted["manifestsDeleted"] == [image.digest] and deleted["tagsDeleted"] == ["v1"]
    az("acr", "repository", "delete", "-n", "dockyard", "--image", "other:v1", "--yes")
    left = az("acr", "repository", "show-manifests", "-n", "dockyard", "--repository", "other")
    assert left == []


def test_webhooks(az: AzureCli) -> None:
    receiver = WebhookReceiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        created = az(
            "acr",
            "webhook",
            "create",
            "-r",
            "dockyard",
            "-n",
            "builds",
            "--uri",
            receiver.url,
            "--actions",
            "push",
            "delete",
        )
        assert created["actions"] == ["push", "delete"] and created["status"] == "enabled"
        assert [w["name"] for w in az("acr", "webhook", "list", "-r", "dockyard")] == ["builds"]
        ping = az("acr", "webhook", "ping", "-r", "dockyard", "-n", "builds")
        [event] = az("acr", "webhook", "list-events", "-r", "dockyard", "-n", "builds")
        assert event["id"] == ping["id"]
        assert event["eventRequestMessage"]["requestUri"] == receiver.url
        assert event["eventResponseMessage"]["statusCode"] == "200"
        az("acr", "webhook", "delete", "-r", "dockyard", "-n", "builds")
        assert az("acr", "webhook", "list", "-r", "dockyard") == []
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_replications(az: AzureCli, tmp_path: Path) -> None:
    """The home region (the registry's location, `local`) is listed as a replication;
    one in the peer region eastus, a second server, becomes Ready once it answers."""
    peer_env = {"DOCKYARD_REGION__PEERS": json.dumps([{"name": "local", "url": "http://x"}])}
    peer_env["DOCKYARD_REGION__PEER_SECRET"] = PEER_SECRET
    with RegistryServer(
        tmp_path / "eastus",
        tmp_path / "eastus.log",
        port=PEER_PORT,
        args=("--region", "eastus"),
        env=peer_env,
    ).start():
        created = az(
            "acr", "replication", "create", "-r", "dockyard", "-l", "eastus", "--tags", "a=b"
        )
        assert (created["name"], created["location"]) == ("eastus", "eastus")
        assert created["provisioningState"] == "Succeeded" and created["tags"] == {"a": "b"}
        assert created["status"]["displayStatus"] == "Ready", created["status"]
        listed = az("acr", "replication", "list", "-r", "dockyard")
        assert [(r["name"], r["location"]) for r in listed] == [
            ("local", "local"),
            ("eastus", "eastus"),
        ]
        updated = az(
            "acr",
            "replication",
            "update",
            "-r",
            "dockyard",
            "-n",
            "eastus",
            "--global-endpoint-routing",
            "false",
            "--tags",
            "c=d",
        )
        assert updated["regionEndpointEnabled"] is False and updated["tags"] == {"c": "d"}
        shown = az("acr", "replication", "show", "-r", "dockyard", "-n", "eastus")
        assert shown["regionEndpointEnabled"] is False
        nowhere = az.run("acr", "replication", "create", "-r", "dockyard", "-l", "northpole")
        assert nowhere.returncode != 0 and "not a region of this deployment" in nowhere.stderr
        az("acr", "replication", "delete", "-r", "dockyard", "-n", "eastus")
        listed = az("acr", "replication", "list", "-r", "dockyard")
        assert [r["name"] for r in listed] == ["local"]


def test_scope_maps_and_tokens(az: AzureCli) -> None:
    scope_map = az(
        "acr",
        "scope-map",
        "create",
        "-r",
        "dockyard",
        "-n",
        "readers",
        "--repository",
        "hello/app",
        "content/read",
    )
    assert scope_map["actions"] == ["repositories/hello/app/content/read"]
    updated = az(
        "acr",
        "scope-map",
        "update",
        "-r",
        "dockyard",
        "-n",
        "readers",
        "--add-repository",
        "other",
        "content/read",
    )
    assert "repositories/other/content/read" in updated["actions"]
    assert az("acr", "scope-map", "show", "-r", "dockyard", "-n", "readers")["name"] == "readers"
    assert [s["name"] for s in az("acr", "scope-map", "list", "-r", "dockyard")] == ["readers"]
    token = az("acr", "token", "create", "-r", "dockyard", "-n", "ci", "--scope-map", "readers")
    assert token["credentials"]["username"] == "ci"
    assert all(p["value"] for p in token["credentials"]["passwords"])
    [listed] = az("acr", "token", "list", "-r", "dockyard")
    assert (listed["name"], listed["status"]) == ("ci", "enabled")
    assert listed["scopeMapId"] == scope_map["id"]
    az("acr", "token", "delete", "-r", "dockyard", "-n", "ci", "--yes")
    az("acr", "scope-map", "delete", "-r", "dockyard", "-n", "readers", "--yes")
    assert az("acr", "scope-map", "list", "-r", "dockyard") == []


def test_network_rules(az: AzureCli) -> None:
    added = az("acr", "network-rule", "add", "-n", "dockyard", "--ip-address", "10.0.0.0/24")
    assert added["networkRuleSet"]["ipRules"] == [
        {"action": "Allow", "ipAddressOrRange": "10.0.0.0/24"}
    ]
    assert az("acr", "network-rule", "list", "-n", "dockyard")["ipRules"] == [
        {"action": "Allow", "ipAddressOrRange": "10.0.0.0/24"}
    ]
    removed = az("acr", "network-rule", "remove", "-n", "dockyard", "--ip-address", "10.0.0.0/24")
    assert removed["networkRuleSet"]["ipRules"] == []


def test_retention_and_soft_delete(az: AzureCli) -> None:
    policy = ("--type", "UntaggedManifests")
    on = az(
        "acr",
        "config",
        "retention",
        "update",
        "-r",
        "dockyard",
        "--status",
        "enabled",
        "--days",
        "10",
        *policy,
    )
    assert (on["status"], on["days"]) == ("enabled", 10)
    assert az("acr", "config", "retention", "show", "-r", "dockyard")["days"] == 10
    # ACR keeps retention and soft delete apart: one off before the other goes on.
    az(
        "acr",
        "config",
        "retention",
        "update",
        "-r",
        "dockyard",
        "--status",
        "disabled",
        "--days",
        "0",
        *policy,
    )
    soft = az(
        "acr",
        "config",
        "soft-delete",
        "update",
        "-r",
        "dockyard",
        "--status",
        "enabled",
        "--days",
        "5",
        "--yes",
    )
    assert (soft["status"], soft["retentionDays"]) == ("enabled", 5)
    assert az("acr", "config", "soft-delete", "show", "-r", "dockyard")["status"] == "enabled"


def test_content_trust(az: AzureCli, server: RegistryServer, tmp_path: Path) -> None:
    """`az acr config content-trust show|update` read and switch off the registry's
    signature trust policy (docs/signing.md); az itself no longer offers `enabled` (Docker
    Content Trust is retiring): the policy is turned on with `dockyard trust`."""
    assert az("acr", "config", "content-trust", "show", "-r", "dockyard")["status"] == "disabled"
    public = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    (tmp_path / "cosign.pub").write_bytes(public)
    document = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "az",
                "registryScopes": ["az-trust/*"],
                "signatureVerification": {"level": "strict"},
                "trustStores": ["cosign:az"],
            }
        ],
    }
    (tmp_path / "policy.json").write_text(json.dumps(document))
    server.admin(
        "trust", "store", "add", str(tmp_path / "cosign.pub"), "--type", "cosign", "--name", "az"
    )
    server.admin("trust", "policy", "set", str(tmp_path / "policy.json"), "--enable")
    shown = az("acr", "config", "content-trust", "show", "-r", "dockyard")
    assert (shown["type"], shown["status"]) == ("Notary", "enabled")
    off = az(
        "acr",
        "config",
        "content-trust",
        "update",
        "-r",
        "dockyard",
        "--status",
        "disabled",
        "--yes",
    )
    assert off["status"] == "disabled"
    assert az("acr", "config", "content-trust", "show", "-r", "dockyard")["status"] == "disabled"
    kept = server.admin("trust", "policy", "show")
    assert '"enabled": false' in kept and '"name": "az"' in kept


def test_cache_rules(az: AzureCli) -> None:
    rule = az(
        "acr",
        "cache",
        "create",
        "-r",
        "dockyard",
        "-n",
        "hello",
        "-s",
        "docker.io/library/hello-world",
        "-t",
        "hello-world",
    )
    assert (rule["sourceRepository"], rule["targetRepository"]) == (
        "docker.io/library/hello-world",
        "hello-world",
    )
    assert [r["name"] for r in az("acr", "cache", "list", "-r", "dockyard")] == ["hello"]
    assert az("acr", "cache", "show", "-r", "dockyard", "-n", "hello")["id"] == rule["id"]
    az("acr", "cache", "delete", "-r", "dockyard", "-n", "hello", "--yes")
    assert az("acr", "cache", "list", "-r", "dockyard") == []


def test_admin_credentials(az: AzureCli) -> None:
    shown = az("acr", "credential", "show", "-n", "dockyard")
    assert shown["username"] == "dockyard"
    before = {p["name"]: p["value"] for p in shown["passwords"]}
    assert ADMIN_PASSWORD in before.values()
    renewed = az("acr", "credential", "renew", "-n", "dockyard", "--password-name", "password2")
    after = {p["name"]: p["value"] for p in renewed["passwords"]}
    assert after["password2"] != before["password2"] and after["password"] == before["password"]


def test_encryption(az: AzureCli, server: RegistryServer) -> None:
    """Customer-managed keys in the server's key directory: turned on through the
    management API (`az rest`, as ACR takes them only at `az acr create`, which asks
    Azure's managed-identity API for the identity), then `az acr encryption show` and
    `rotate-key` as a user types them."""
    keys = LocalKeyProvider(server.data_dir / "keys")
    first = keys.create_key("kek")
    assert az("acr", "encryption", "show", "-n", "dockyard") == {
        "keyVaultProperties": None,
        "status": "disabled",
    }
    registry = az("acr", "show", "-n", "dockyard")["id"]
    az(
        "rest", "--method", "patch", "--url", f"{registry}?api-version=2025-11-01",
        "--body", '{"properties": {"encryption": {"status": "enabled",'
        ' "keyVaultProperties": {"keyIdentifier": "local:kek"}}}}',
    )  # fmt: skip
    shown = az("acr", "encryption", "show", "-n", "dockyard")
    assert shown["status"] == "enabled"
    assert shown["keyVaultProperties"]["keyIdentifier"] == "local:kek"
    assert shown["keyVaultProperties"]["versionedKeyIdentifier"] == first
    assert shown["keyVaultProperties"]["keyRotationEnabled"] is True
    other = keys.create_key("other")
    rotated = az(
        "acr", "encryption", "rotate-key", "-n", "dockyard",
        "--key-encryption-key", "local:other", "--identity", "[system]",
    )  # fmt: skip
    vault = rotated["encryption"]["keyVaultProperties"]
    assert vault["versionedKeyIdentifier"] == other and vault["identity"] == "system"
    assert vault["lastKeyRotationTimestamp"] is not None


def test_encryption_at_creation(az: AzureCli, server: RegistryServer) -> None:
    """`az acr create --key-encryption-key --identity` as ACR takes them: az reads the
    identity's client id from Microsoft.ManagedIdentity, which Dockyard's identities
    stand for, then creates the registry encrypted."""
    LocalKeyProvider(server.data_dir / "keys").create_key("createkek")
    reader = printed(server.admin("identity", "create", "kv-reader"), "username")
    created = az(
        "acr", "create", "-n", "azsecure", "-g", "dockyard", "--sku", "Premium",
        "--key-encryption-key", "local:createkek", "--identity", "kv-reader",
    )  # fmt: skip
    assert created["encryption"]["status"] == "enabled"
    vault = created["encryption"]["keyVaultProperties"]
    assert vault["keyIdentifier"] == "local:createkek" and vault["identity"] == reader
    refused = az.run(
        "acr", "create", "-n", "azsecure2", "-g", "dockyard", "--sku", "Premium",
        "--key-encryption-key", "local:createkek", "--identity", "nobody",
    )  # fmt: skip
    assert refused.returncode != 0 and "nobody" in refused.stderr
    az("acr", "delete", "-n", "azsecure", "--yes")


def test_build(az: AzureCli, server: RegistryServer, image: images.Image, tmp_path: Path) -> None:
    """`az acr build` unchanged: the context uploaded to the server's Blob-like URL, the
    build run by buildah on the server, its log streamed to az, the image pullable."""
    (tmp_path / "Dockerfile").write_text(
        f'FROM {server.host}/hello/app:v1\nARG WHO\nRUN echo "built by $WHO" > /built\n'
    )
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("left out of the context\n")
    result = az.run(
        "acr",
        "build",
        "-r",
        "dockyard",
        "-t",
        "built:{{.Run.ID}}",
        "--build-arg",
        "WHO=az",
        str(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    printed_log = result.stdout + result.stderr
    assert "STEP 3/3: RUN" in printed_log and "Successfully pushed image" in printed_log
    run_id = printed_log.split("Run ID: ", 1)[1].split()[0]
    assert run_id.startswith("ca") and f"Run ID: {run_id} was successful" in printed_log
    assert az("acr", "repository", "show-tags", "-n", "dockyard", "--repository", "built") == [
        run_id
    ]
    shown = az("acr", "task", "show-run", "-r", "dockyard", "--run-id", run_id)
    assert shown["status"] == "Succeeded" and shown["runType"] == "QuickBuild"
    [output] = shown["outputImages"]
    pulled = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--cert-dir",
            str(server.data_dir / "tls"),
            "--creds",
            f"dockyard:{ADMIN_PASSWORD}",
            f"docker://{server.host}/built:{run_id}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["Digest"] == output["digest"]
    runs = az("acr", "task", "list-runs", "-r", "dockyard", "--run-status", "Succeeded")
    assert run_id in [r["runId"] for r in runs]
    # The log stays readable after the run.
    logs = az.run("acr", "task", "logs", "-r", "dockyard", "--run-id", run_id)
    assert logs.returncode == 0 and f"Run ID: {run_id} was successful" in logs.stdout


def test_build_for_another_platform(
    az: AzureCli, server: RegistryServer, image: images.Image, tmp_path: Path
) -> None:
    """`az acr build --platform linux/arm64/v8`: a Dockerfile without RUN built for arm64
    on this amd64 server from a two-platform base, its image's config saying so; a base
    of amd64 only is refused for arm64, saying why."""
    push_index(server, ADMIN_PASSWORD, "hello/multi")
    (tmp_path / "Dockerfile").write_text(
        f"FROM {server.host}/hello/multi:1\nCOPY Dockerfile /Dockerfile\n"
    )
    result = az.run(
        "acr", "build", "-r", "dockyard", "-t", "arm:{{.Run.ID}}",
        "--platform", "linux/arm64/v8", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    printed_log = result.stdout + result.stderr
    assert "Building the image for linux/arm64/v8" in printed_log
    run_id = printed_log.split("Run ID: ", 1)[1].split()[0]
    inspected = subprocess.run(
        [
            "skopeo",
            "inspect",
            "--config",
            "--cert-dir",
            str(server.data_dir / "tls"),
            "--creds",
            f"dockyard:{ADMIN_PASSWORD}",
            f"docker://{server.host}/arm:{run_id}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert inspected.returncode == 0, inspected.stderr
    config = json.loads(inspected.stdout)
    assert (config["architecture"], config.get("variant")) == ("arm64", "v8")
    shown = az("acr", "task", "show-run", "-r", "dockyard", "--run-id", run_id)
    assert shown["platform"] == {"os": "Linux", "architecture": "arm64", "variant": "v8"}
    (tmp_path / "Dockerfile").write_text(f"FROM {server.host}/hello/app:v1\n")
    refused = az.run("acr", "build", "-r", "dockyard", "--platform", "linux/arm64", str(tmp_path))
    assert refused.returncode != 0
    assert "has no image for linux/arm64 (only linux/amd64)" in refused.stdout + refused.stderr


def test_run_cmd(az: AzureCli, image: images.Image) -> None:
    """`az acr run --cmd` unchanged: one container of the registry's own image, its
    output streamed to az."""
    result = az.run(
        "acr",
        "run",
        "-r",
        "dockyard",
        "--cmd",
        "$Registry/hello/app:v1 echo ran by az",
        "/dev/null",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ran by az" in result.stdout
    failed = az.run(
        "acr", "run", "-r", "dockyard", "--cmd", "$Registry/hello/app:v1 false", "/dev/null"
    )
    assert failed.returncode != 0 and "Run failed" in failed.stderr


def test_run_task_file(
    az: AzureCli, server: RegistryServer, image: images.Image, tmp_path: Path
) -> None:
    """`az acr run -f acr-task.yaml DIR --set` unchanged: the directory uploaded, a `cmd`
    step that writes into the context, a build of it and its push, step by step in the
    log; a task file that cannot run is refused before it is queued; a task of the same
    file (a FileTask step) run with the directory as its context."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {server.host}/hello/app:v1\nCOPY made.txt /made.txt\n"
    )
    (tmp_path / "acr-task.yaml").write_text(
        "version: v1.1.0\nsteps:\n"
        "  - id: make\n"
        '    cmd: $Registry/hello/app:v1 sh -c "echo {{.Values.word}} > made.txt"\n'
        "  - build: -t $Registry/from-file:$ID .\n"
        "  - push: [$Registry/from-file:$ID]\n"
    )
    result = az.run(
        "acr", "run", "-r", "dockyard", "-f", "acr-task.yaml", "--set", "word=hi", str(tmp_path)
    )
    printed_log = result.stdout + result.stderr
    assert result.returncode == 0, printed_log
    assert "Step ID: make marked as successful" in printed_log
    run_id = printed_log.split("Run ID: ", 1)[1].split()[0]
    assert f"Run ID: {run_id} was successful" in printed_log
    tags = az("acr", "repository", "show-tags", "-n", "dockyard", "--repository", "from-file")
    assert tags == [run_id]
    shown = az("acr", "task", "show-run", "-r", "dockyard", "--run-id", run_id)
    assert shown["runType"] == "QuickRun" and shown["outputImages"][0]["tag"] == run_id

    inline = tmp_path / "inline.yaml"  # with /dev/null, az sends the file itself
    inline.write_text(
        "version: v1.1.0\nsteps:\n"
        "  - {cmd: $Registry/hello/app:v1 echo first $ID, when: ['-']}\n"
        "  - {cmd: $Registry/hello/app:v1 echo second {{.Values.word}}, when: ['-']}\n"
    )
    result = az.run(
        "acr", "run", "-r", "dockyard", "-f", str(inline), "--set", "word=inline", "/dev/null"
    )
    printed_log = result.stdout + result.stderr
    assert result.returncode == 0, printed_log
    assert "first ca" in result.stdout and "second inline" in result.stdout, printed_log

    (tmp_path / "broken.yaml").write_text("steps:\n  - cmd: x\n    colour: red\n")
    refused = az.run("acr", "run", "-r", "dockyard", "-f", "broken.yaml", str(tmp_path))
    assert refused.returncode != 0 and "unknown key 'colour'" in refused.stderr

    created = az(
        "acr", "task", "create", "-n", "filetask", "-r", "dockyard", "-f", "acr-task.yaml",
        "-c", "https://github.com/example/app.git", "--commit-trigger-enabled", "false",
        "--set", "word=task",
    )  # fmt: skip
    assert created["step"]["type"] == "FileTask"
    ran = az.run("acr", "task", "run", "-n", "filetask", "-r", "dockyard", "-c", str(tmp_path))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [run] = az("acr", "task", "list-runs", "-n", "filetask", "-r", "dockyard")
    assert run["runType"] == "AutoRun" and run["status"] == "Succeeded"
    az("acr", "task", "delete", "-n", "filetask", "-r", "dockyard", "--yes")


def test_tasks(az: AzureCli, server: RegistryServer, image: images.Image, tmp_path: Path) -> None:
    """`az acr task` unchanged: a `--cmd` task created with a timer, given another,
    shown, updated, listed and run
    for real (its log streamed, its runs listed by task name, its last log read again);
    a Dockerfile task whose git context (unreachable here) fails to be fetched, then is
    overridden by an uploaded directory, built and pushed; both deleted."""
    created = az(
        "acr", "task", "create", "-n", "cmdtask", "-r", "dockyard",
        "--cmd", "$Registry/hello/app:v1 echo as created", "-c", "/dev/null",
        "--schedule", "0 21 * * *",
    )  # fmt: skip
    assert created["name"] == "cmdtask" and created["step"]["type"] == "EncodedTask"
    assert created["status"] == "Enabled" and created["provisioningState"] == "Succeeded"
    assert az("acr", "task", "show", "-n", "cmdtask", "-r", "dockyard")["timeout"] == 3600
    az(
        "acr", "task", "timer", "add", "-n", "cmdtask", "-r", "dockyard",
        "--timer-name", "often", "--schedule", "*/5 * * * *",
    )  # fmt: skip
    az(
        "acr", "task", "timer", "update", "-n", "cmdtask", "-r", "dockyard",
        "--timer-name", "often", "--enabled", "false",
    )  # fmt: skip
    timers = az("acr", "task", "timer", "list", "-n", "cmdtask", "-r", "dockyard")
    assert sorted((t["schedule"], t["status"]) for t in timers) == [
        ("*/5 * * * *", "Disabled"),
        ("0 21 * * *", "Enabled"),
    ]
    updated = az(
        "acr", "task", "update", "-n", "cmdtask", "-r", "dockyard",
        "--cmd", "$Registry/hello/app:v1 echo ran by {{.Run.TaskName}}", "--timeout", "900",
    )  # fmt: skip
    assert updated["timeout"] == 900 and updated["step"]["type"] == "EncodedTask"
    ran = az.run("acr", "task", "run", "-n", "cmdtask", "-r", "dockyard")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ran by cmdtask" in ran.stdout and "as created" not in ran.stdout
    [run] = az("acr", "task", "list-runs", "-n", "cmdtask", "-r", "dockyard")
    assert run["task"] == "cmdtask" and run["status"] == "Succeeded"
    logs = az.run("acr", "task", "logs", "-n", "cmdtask", "-r", "dockyard")
    assert logs.returncode == 0 and "ran by cmdtask" in logs.stdout
    assert run["runId"] in logs.stderr  # "Run ID: caN" of the last run

    (tmp_path / "Dockerfile").write_text(
        f"FROM {server.host}/hello/app:v1\nRUN echo built by a task > /built\n"
    )
    az(
        "acr", "task", "create", "-n", "buildtask", "-r", "dockyard", "-f", "Dockerfile",
        "-c", "https://github.com/example/app.git", "--commit-trigger-enabled", "false",
        "-t", "task-built:{{.Run.ID}}",
    )  # fmt: skip
    assert sorted(t["name"] for t in az("acr", "task", "list", "-r", "dockyard")) == [
        "buildtask",
        "cmdtask",
    ]
    # Its git context is fetched when it runs: this machine reaches no github.com.
    unfetched = az.run("acr", "task", "run", "-n", "buildtask", "-r", "dockyard")
    assert unfetched.returncode != 0
    said = unfetched.stdout + unfetched.stderr
    assert "fetching https://github.com/example/app.git failed" in said, said
    built = az.run("acr", "task", "run", "-n", "buildtask", "-r", "dockyard", "-c", str(tmp_path))
    assert built.returncode == 0, built.stdout + built.stderr
    assert "Successfully pushed image" in built.stdout + built.stderr
    build, failed = az("acr", "task", "list-runs", "-n", "buildtask", "-r", "dockyard")
    assert failed["status"] == "Failed"
    assert build["runType"] == "AutoBuild" and build["status"] == "Succeeded"
    assert az("acr", "repository", "show-tags", "-n", "dockyard", "--repository", "task-built") == [
        build["runId"]
    ]
    for name in ("cmdtask", "buildtask"):
        az.run("acr", "task", "delete", "-n", name, "-r", "dockyard", "--yes")
    assert az("acr", "task", "list", "-r", "dockyard") == []


def test_task_runs(az: AzureCli, server: RegistryServer, image: images.Image) -> None:
    """`az acr taskrun` unchanged (a preview group): a task run made as a template makes
    it (an ARM PUT, here with `az rest`), run for real, then listed, shown, its log read
    with `az acr taskrun logs`, and deleted."""
    registry_id = az("acr", "show", "-n", "dockyard")["id"]
    command = "version: v1.1.0\nsteps:\n  - cmd: $Registry/hello/app:v1 echo from a taskrun\n"
    body = {
        "location": "westus",
        "properties": {
            "forceUpdateTag": "first",
            "runRequest": {
                "type": "EncodedTaskRunRequest",
                "encodedTaskContent": base64.b64encode(command.encode()).decode(),
                "platform": {"os": "Linux", "architecture": "amd64"},
                "values": [],
            },
        },
    }
    az(
        "rest", "--method", "put",
        "--url", f"{server.url}{registry_id}/taskRuns/hello?api-version=2019-06-01-preview",
        "--body", json.dumps(body),
    )  # fmt: skip
    [listed] = az("acr", "taskrun", "list", "-r", "dockyard")
    assert listed["name"] == "hello" and listed["forceUpdateTag"] == "first"
    logs = az.run("acr", "taskrun", "logs", "-n", "hello", "-r", "dockyard")
    assert logs.returncode == 0, logs.stdout + logs.stderr
    assert "from a taskrun" in logs.stdout
    shown = az("acr", "taskrun", "show", "-n", "hello", "-r", "dockyard")
    assert shown["runResult"]["status"] == "Succeeded"
    az("acr", "taskrun", "delete", "-n", "hello", "-r", "dockyard", "--yes")
    assert az("acr", "taskrun", "list", "-r", "dockyard") == []
