"""Quarantine against a real `dockyard serve` with logins on and TLS, driven as ACR's
walkthrough drives it: the policy turned on with `dockyard config quarantine`, an image
pushed with skopeo, skopeo refused as a plain puller (by tag and by digest) and let
through as a quarantine reader, the writer's PATCH made with a bearer token from
`/oauth2/token` as the walkthrough's curl does, then skopeo pulls it as anyone; the
webhooks a real receiver gets on the way (`quarantine` at the push, `push` at the
pass); Microsoft's SDK (which knows no quarantine fields) refused, then served."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from azure.containerregistry import ContainerRegistryClient
from azure.core.exceptions import HttpResponseError
from conftest import RegistryServer, printed
from test_webhooks import Receiver

from dockyard.credentials import DockyardCredential

pytestmark = pytest.mark.timeout(180)

ADMIN_PASSWORD = "quarantine-admin-password"
TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")
AUDIENCE = "https://containerregistry.azure.net"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    base = tmp_path_factory.mktemp("quarantine")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        tls=True,
        args=(),
        env={
            "DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DOCKYARD_OUTBOX__POLL_SECONDS": "0.2",
        },
    ).start() as running:
        yield running


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.stop()


def identity(server: RegistryServer, name: str, role: str) -> tuple[str, str]:
    output = server.admin("identity", "create", name)
    server.manage(
        "role", "assignment", "create", "--assignee", name, "--role", role, "-r", "dockyard"
    )
    return printed(output, "username"), printed(output, "secret")


def creds(pair: tuple[str, str]) -> str:
    return f"{pair[0]}:{pair[1]}"


def sdk(server: RegistryServer, pair: tuple[str, str]) -> ContainerRegistryClient:
    credential = DockyardCredential(server.url, *pair, verify=str(server.ca_file))
    return ContainerRegistryClient(
        server.url, credential, audience=AUDIENCE, connection_verify=str(server.ca_file)
    )


def test_acr_walkthrough_with_skopeo_curl_and_the_sdk(
    server: RegistryServer, receiver: Receiver, skopeo, tmp_path: Path
) -> None:
    puller = identity(server, "puller", "AcrPull")
    reader = identity(server, "scanner-pull", "AcrQuarantineReader")
    writer = identity(server, "scanner", "AcrQuarantineWriter")
    server.manage(
        "webhook", "create", "-n", "scanner", "-r", "dockyard", "--uri", f"{receiver.url}/ok/q",
        "--actions", "push,quarantine",
    )  # fmt: skip
    shown = server.manage("config", "quarantine", "update", "-r", "dockyard", "--status", "enabled")
    assert json.loads(shown) == {"status": "enabled"}
    shown = server.manage("config", "quarantine", "show", "-r", "dockyard")
    assert json.loads(shown) == {"status": "enabled"}

    image = images.busybox_image()
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    tagged = f"docker://{server.host}/helloworld:1"
    by_digest = f"docker://{server.host}/helloworld@{image.digest}"
    skopeo(
        "copy", *TLS_OFF, "--preserve-digests", "--dest-creds", f"dockyard:{ADMIN_PASSWORD}",
        f"oci:{layout}:latest", tagged,
    )  # fmt: skip
    [held] = receiver.wait("/ok/q", lambda got: len(got) >= 1)
    assert held.body["action"] == "quarantine"
    assert held.body["target"]["digest"] == image.digest
    assert held.body["target"]["tag"] == "1"

    def pull(source: str, who: tuple[str, str], name: str, check: bool = True):
        return skopeo(
            "copy", *TLS_OFF, "--src-creds", creds(who), source, f"oci:{tmp_path / name}:x",
            check=check,
        )  # fmt: skip

    refused = pull(tagged, puller, "by-tag", check=False)
    assert refused.returncode != 0 and "manifest unknown" in refused.stderr, refused.stderr
    refused = pull(by_digest, puller, "by-digest", check=False)
    assert refused.returncode != 0, refused.stderr
    assert "denied: The operation is disallowed." in refused.stderr, refused.stderr
    pull(by_digest, reader, "reader")
    assert images.oci_layout_ref(tmp_path / "reader", "x")["digest"] == image.digest

    with sdk(server, puller) as client, pytest.raises(HttpResponseError) as caught:
        client.get_manifest("helloworld", image.digest)
    assert caught.value.status_code == 403
    with sdk(server, reader) as client:
        assert client.get_manifest("helloworld", image.digest).digest == image.digest
        props = client.get_manifest_properties("helloworld", image.digest)
        assert props.tags == ["1"]

    # The scanner's PATCH, as the walkthrough's curl makes it: a pull,push token.
    with httpx.Client(base_url=server.url, verify=server.verify) as http:
        token = http.get(
            "/oauth2/token",
            params={"service": server.host, "scope": "repository:helloworld:pull,push"},
            auth=writer,
        ).json()["access_token"]
        details = json.dumps({"state": "scan passed", "link": "http://test.io/test"})
        answer = http.patch(
            f"/acr/v1/helloworld/_manifests/{image.digest}",
            json={"quarantineState": "Passed", "quarantineDetails": details},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200, answer.text
    attributes = answer.json()["manifest"]["changeableAttributes"]
    assert attributes["quarantineState"] == "Passed"
    assert attributes["quarantineDetails"] == details

    _, pushed = receiver.wait("/ok/q", lambda got: len(got) >= 2)
    assert pushed.body["action"] == "push"
    assert pushed.body["target"]["digest"] == image.digest
    assert pushed.body["target"]["tag"] == "1"
    pull(tagged, puller, "passed")
    assert images.oci_layout_ref(tmp_path / "passed", "x")["digest"] == image.digest
    with sdk(server, puller) as client:
        assert client.get_manifest("helloworld", "1").digest == image.digest


def test_the_state_survives_a_restart(server: RegistryServer, skopeo, tmp_path: Path) -> None:
    puller = identity(server, "restart-puller", "AcrPull")
    server.manage("config", "quarantine", "update", "-r", "dockyard", "--status", "enabled")
    image = images.busybox_image("arm64")
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    tagged = f"docker://{server.host}/restarted:1"
    skopeo(
        "copy", *TLS_OFF, "--dest-creds", f"dockyard:{ADMIN_PASSWORD}",
        f"oci:{layout}:latest", tagged,
    )  # fmt: skip
    server.restart()
    refused = skopeo(
        "copy", *TLS_OFF, "--src-creds", creds(puller), tagged, f"oci:{tmp_path / 'r'}:x",
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "manifest unknown" in refused.stderr, refused.stderr
