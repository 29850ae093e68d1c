"""HTTPS with the self-signed development certificate, and network rules, on real
`dockyard serve` processes: clients from several loopback source addresses, rules
changed by the `dockyard` CLI while the server runs, X-Forwarded-For through trusted
proxies only. Loopback addresses only; every server is stopped by the test."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer
from endpoint import HTTP_TIMEOUT

CLI_TIMEOUT = 60.0


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[RegistryServer]:
    server = RegistryServer(tmp_path / "data", tmp_path / "dockyard.log", tls=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def proxied_server(tmp_path: Path) -> Iterator[RegistryServer]:
    """A server that trusts 127.0.0.5 (and only it) as a reverse proxy."""
    with RegistryServer(
        tmp_path / "data",
        tmp_path / "dockyard.log",
        args=("--no-auth", "--trusted-proxy", "127.0.0.5"),
    ).start() as server:
        yield server


def get_from(
    server: RegistryServer, source: str, path: str = "/v2/", headers: dict | None = None
) -> httpx.Response:
    """GET from the loopback address `source` (the whole 127.0.0.0/8 is this machine)."""
    transport = httpx.HTTPTransport(local_address=source, verify=server.verify)
    with httpx.Client(transport=transport, base_url=server.url, timeout=HTTP_TIMEOUT) as http:
        return http.get(path, headers=headers)


def denied_message(response: httpx.Response) -> str:
    assert response.status_code == 403, (response.status_code, response.text)
    (error,) = response.json()["errors"]
    assert error["code"] == "DENIED"
    return error["message"]


# -- TLS ---------------------------------------------------------------------------------


def test_https_with_the_self_signed_certificate(
    tls_server: RegistryServer, skopeo, tmp_path: Path
) -> None:
    assert tls_server.url.startswith("https://")
    with tls_server.client() as http:
        assert http.get("/v2/").status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_server.url}/v2/", timeout=HTTP_TIMEOUT)  # the system trust store

    image = images.busybox_image()
    tls_server.push_image("tls/busybox", image, reference="1")
    reference = f"docker://{tls_server.host}/tls/busybox:1"
    cert_dir = str(tls_server.ca_file.parent)
    inspected = skopeo("inspect", "--tls-verify=true", "--cert-dir", cert_dir, "--raw", reference)
    assert inspected.stdout.encode() == image.manifest
    skopeo("copy", "--src-cert-dir", cert_dir, reference, f"oci:{tmp_path / 'copy'}:1")
    assert images.oci_layout_ref(tmp_path / "copy", "1")["digest"] == image.digest

    untrusted = skopeo("inspect", "--tls-verify=true", "--raw", reference, check=False)
    assert untrusted.returncode != 0
    assert "certificate signed by unknown authority" in untrusted.stderr


def _handshake(server: RegistryServer, version: ssl.TLSVersion) -> str:
    """The TLS version negotiated by a client that speaks only `version`."""
    context = ssl.create_default_context(cafile=server.ca_file)
    context.minimum_version = context.maximum_version = version
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions at all
    with (
        socket.create_connection(("127.0.0.1", server.port), timeout=HTTP_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return tls.version() or ""


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_1_2_is_the_minimum(tls_server: RegistryServer) -> None:
    assert _handshake(tls_server, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert _handshake(tls_server, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(tls_server, ssl.TLSVersion.TLSv1_1)
    # The server's alert to a client that offered TLS 1.1, not the client declining to try.
    assert "ALERT_HANDSHAKE_FAILURE" in str(refused.value)


@pytest.mark.slow
def test_the_certificate_is_reused_across_restarts_and_remade_for_a_new_login_server(
    tls_server: RegistryServer,
) -> None:
    first = tls_server.ca_file.read_bytes()
    tls_server.restart()
    assert tls_server.ca_file.read_bytes() == first
    with tls_server.client() as http:
        assert http.get("/v2/").status_code == 200
    assert "self-signed development certificate reused" in tls_server.stderr_tail(200)

    tls_server.args = (*tls_server.args, "--login-server", f"registry.localhost:{tls_server.port}")
    tls_server.restart()
    assert tls_server.ca_file.read_bytes() != first
    context = ssl.create_default_context(cafile=tls_server.ca_file)
    with (
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=HTTP_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="registry.localhost") as tls,
    ):
        assert ("DNS", "registry.localhost") in tls.getpeercert()["subjectAltName"]


# -- network rules -------------------------------------------------------------------------


def test_network_rules_from_several_source_addresses(fresh_registry: RegistryServer) -> None:
    server = fresh_registry
    for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
        assert get_from(server, source).status_code == 200  # default: Allow

    server.manage("registry", "update", "-n", "dockyard", "--default-action", "Deny")
    message = denied_message(get_from(server, "127.0.0.2"))
    assert "client address 127.0.0.2 is not allowed" in message
    assert "dockyard network-rule add -n dockyard --ip-address 127.0.0.2" in message
    head = httpx.head(f"{server.url}/v2/", timeout=HTTP_TIMEOUT)
    assert (head.status_code, head.content) == (403, b"")
    for path in ("/healthz", "/readyz"):  # load balancers keep working
        assert get_from(server, "127.0.0.2", path).status_code == 200

    server.manage("network-rule", "add", "-n", "dockyard", "--ip-address", "127.0.0.2")
    server.manage(
        "network-rule", "add", "-n", "dockyard", "--ip-address", "127.0.0.8/30"
    )  # .8 - .11
    listing = server.manage("network-rule", "list", "-n", "dockyard")
    assert "127.0.0.2" in listing and "127.0.0.8/30" in listing
    for source, status in [
        ("127.0.0.1", 403),
        ("127.0.0.2", 200),
        ("127.0.0.3", 403),
        ("127.0.0.9", 200),
        ("127.0.0.11", 200),
        ("127.0.0.12", 403),
    ]:
        # several requests, so that every worker process answers at least one
        for _ in range(4):
            assert get_from(server, source).status_code == status, source

    server.manage("network-rule", "remove", "-n", "dockyard", "--ip-address", "127.0.0.2")
    assert get_from(server, "127.0.0.2").status_code == 403

    server.manage("registry", "update", "-n", "dockyard", "--public-network-enabled", "false")
    message = denied_message(get_from(server, "127.0.0.9"))
    assert "public network access to registry 'dockyard' is disabled" in message
    assert get_from(server, "127.0.0.9", "/healthz").status_code == 200

    server.manage(
        "registry",
        "update",
        "-n",
        "dockyard",
        "--public-network-enabled",
        "true",
        "--default-action",
        "Allow",
    )
    assert get_from(server, "127.0.0.3").status_code == 200


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    proxied_server: RegistryServer,
) -> None:
    server = proxied_server
    server.manage("registry", "update", "-n", "dockyard", "--default-action", "Deny")
    server.manage("network-rule", "add", "-n", "dockyard", "--ip-address", "127.0.0.20")
    forwarded_allowed = {"X-Forwarded-For": "127.0.0.66, 127.0.0.20"}
    forwarded_refused = {"X-Forwarded-For": "127.0.0.20, 127.0.0.21"}

    assert get_from(server, "127.0.0.5", headers=forwarded_allowed).status_code == 200
    message = denied_message(get_from(server, "127.0.0.5", headers=forwarded_refused))
    assert "client address 127.0.0.21" in message
    # Not a trusted proxy: its header is the client's own claim, and is ignored.
    message = denied_message(get_from(server, "127.0.0.6", headers=forwarded_allowed))
    assert "client address 127.0.0.6" in message
    # The trusted proxy itself, without a header, is just a client.
    assert "client address 127.0.0.5" in denied_message(get_from(server, "127.0.0.5"))

    # The access log names the resolved client; its line is written after the response.
    expected = {"127.0.0.20", "127.0.0.21", "127.0.0.6", "127.0.0.5"}
    deadline = time.monotonic() + 5
    remotes: set = set()
    while not expected <= remotes and time.monotonic() < deadline:
        time.sleep(0.05)
        remotes = {entry.get("remote") for entry in server.request_log() if "status" in entry}
    assert expected <= remotes
    assert "127.0.0.66" not in remotes
