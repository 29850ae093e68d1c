"""Microsoft's `azure-containerregistry` SDK, unchanged, against Dockyard over TLS: every
method of `ContainerRegistryClient`, with a `TokenCredential` (a Dockyard identity) and
anonymously. The SDK is the judge of the token flow, the /acr/v1 shapes and the /v2 codes."""

from __future__ import annotations

import hashlib
import io
import json
import os

import images
import pytest
from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from conftest import RegistryServer, printed

from dockyard.credentials import DockyardCredential

AUDIENCE = "https://containerregistry.azure.net"
ADMIN_PASSWORD = "sdk-admin-password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("sdk")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        tls=True,
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    ).start() as running:
        yield running


@pytest.fixture(scope="module")
def credential(server) -> DockyardCredential:
    output = server.admin("identity", "create", "sdk-user")
    for role in ("AcrPush", "AcrDelete"):
        server.manage(
            "role",
            "assignment",
            "create",
            "--assignee",
            "sdk-user",
            "--role",
            role,
            "-r",
            "dockyard",
        )
    return DockyardCredential(
        server.url,
        printed(output, "username"),
        printed(output, "secret"),
        verify=str(server.ca_file),
    )


@pytest.fixture(scope="module")
def client(server, credential):
    with ContainerRegistryClient(
        server.url, credential, audience=AUDIENCE, connection_verify=str(server.ca_file)
    ) as sdk:
        yield sdk


def push_image(client: ContainerRegistryClient, repo: str, tag: str, seed: bytes) -> str:
    config = json.dumps({"architecture": "arm64", "os": "linux", "seed": seed.hex()}).encode()
    layer = hashlib.sha256(seed).digest() * 1000
    for blob in (config, layer):
        digest, size = client.upload_blob(repo, io.BytesIO(blob))
        assert digest == images.sha256_digest(blob) and size == len(blob)
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": images.descriptor(images.OCI_CONFIG, config),
        "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer)],
    }
    return client.set_manifest(repo, manifest, tag=tag)


def test_every_client_method_with_a_token_credential(client):
    digest = push_image(client, "sdk/app", "v1", b"one")
    push_image(client, "sdk/app", "v2", b"two")
    push_image(client, "sdk/other", "latest", b"three")

    assert {"sdk/app", "sdk/other"} <= set(client.list_repository_names())
    paged = list(client.list_repository_names(results_per_page=1))
    assert paged == sorted(paged) and {"sdk/app", "sdk/other"} <= set(paged)

    repo = client.get_repository_properties("sdk/app")
    assert repo.name == "sdk/app" and repo.tag_count == 2 and repo.manifest_count == 2
    updated = client.update_repository_properties("sdk/app", can_list=False)
    assert updated.can_list is False
    client.update_repository_properties("sdk/app", can_list=True)

    tags = list(client.list_tag_properties("sdk/app", results_per_page=1))
    assert [t.name for t in tags] == ["v1", "v2"]
    tag = client.get_tag_properties("sdk/app", "v1")
    assert tag.digest == digest and tag.can_write is True
    assert client.update_tag_properties("sdk/app", "v1", can_delete=False).can_delete is False
    client.update_tag_properties("sdk/app", "v1", can_delete=True)

    manifests = list(client.list_manifest_properties("sdk/app"))
    assert digest in {m.digest for m in manifests}
    props = client.get_manifest_properties("sdk/app", "v1")
    assert props.digest == digest and props.architecture == "arm64"
    assert props.operating_system == "linux" and "v1" in props.tags
    locked = client.update_manifest_properties("sdk/app", digest, can_write=False)
    assert locked.can_write is False
    client.update_manifest_properties("sdk/app", digest, can_write=True)

    got = client.get_manifest("sdk/app", "v1")
    assert got.digest == digest and got.media_type == images.OCI_MANIFEST
    layer_digest = got.manifest["layers"][0]["digest"]
    stream = client.download_blob("sdk/app", layer_digest)
    data = b"".join(stream)
    assert images.sha256_digest(data) == layer_digest

    client.delete_tag("sdk/app", "v2")
    assert [t.name for t in client.list_tag_properties("sdk/app")] == ["v1"]
    client.delete_manifest("sdk/app", "v1")
    client.delete_blob("sdk/app", layer_digest)
    client.delete_repository("sdk/other")
    assert "sdk/other" not in set(client.list_repository_names())


def test_large_blob_downloads_in_ranges(client):
    blob = os.urandom(9 * 1024 * 1024 + 123)  # the SDK pulls 4 MiB ranges
    digest, _ = client.upload_blob("sdk/big", io.BytesIO(blob))
    assert b"".join(client.download_blob("sdk/big", digest)) == blob


def test_anonymous_client(server, client):
    push_image(client, "sdk/public", "v1", b"public")
    anonymous = ContainerRegistryClient(
        server.url, None, audience=AUDIENCE, connection_verify=str(server.ca_file)
    )
    with pytest.raises(ClientAuthenticationError):
        list(anonymous.list_repository_names())
    server.manage("registry", "update", "-n", "dockyard", "--anonymous-pull-enabled", "true")
    try:
        got = anonymous.get_manifest("sdk/public", "v1")
        assert got.manifest["schemaVersion"] == 2
        assert anonymous.get_tag_properties("sdk/public", "v1").name == "v1"
        with pytest.raises(HttpResponseError):
            anonymous.delete_tag("sdk/public", "v1")
    finally:
        server.manage("registry", "update", "-n", "dockyard", "--anonymous-pull-enabled", "false")
        anonymous.close()


def test_wrong_secret_is_refused(server):
    bad = DockyardCredential(server.url, "sdk-user", "not-the-secret", verify=str(server.ca_file))
    with (
        ContainerRegistryClient(
            server.url, bad, audience=AUDIENCE, connection_verify=str(server.ca_file)
        ) as sdk,
        pytest.raises(Exception, match=r"401|nauthori"),
    ):
        list(sdk.list_repository_names())
