"""`tls.py`: the development certificate is made once, reused while it fits, and made
again when it expires or stops covering the hosts the server answers to."""

from __future__ import annotations

import contextlib
import socket
import ssl
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import ValidationError

from dockyard.server import CertificateUnusable, server_certificate
from dockyard.settings import load_settings
from dockyard.tls import (
    ensure_development_certificate,
    host_of,
    hosts_to_cover,
    trust_instructions,
)

NOW = datetime(2026, 6, 1, tzinfo=UTC)
HOSTS = ("localhost", "127.0.0.1", "::1", "registry.example")


def names(cert_file: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName)) | {
        str(a) for a in san.get_values_for_type(x509.IPAddress)
    }


@pytest.mark.parametrize(
    ("address", "host"),
    [
        ("localhost:5000", "localhost"),
        ("registry.example", "registry.example"),
        ("[::1]:5000", "::1"),
        ("::1", "::1"),
        ("127.0.0.1:443", "127.0.0.1"),
    ],
)
def test_host_of(address: str, host: str) -> None:
    assert host_of(address) == host


def test_hosts_cover_loopback_listen_and_login_server() -> None:
    assert hosts_to_cover("localhost:5000", "localhost:5000") == ("localhost", "127.0.0.1", "::1")
    assert hosts_to_cover("127.0.0.1:5000", "Registry.Example:5000") == HOSTS
    wildcard = hosts_to_cover("0.0.0.0:5000", "localhost:5000")
    assert wildcard == ("localhost", "127.0.0.1", "::1", socket.gethostname().lower())


def test_made_once_then_reused(tmp_path: Path) -> None:
    made = ensure_development_certificate(tmp_path, HOSTS, NOW)
    assert made.created
    assert names(made.cert_file) == {"localhost", "127.0.0.1", "::1", "registry.example"}
    assert made.not_after == NOW + timedelta(days=365)
    assert stat.S_IMODE(made.key_file.stat().st_mode) == 0o600
    # skopeo --cert-dir reads every *.key beside the certificate as a client key
    assert [p.name for p in made.cert_file.parent.glob("*.key")] == []
    again = ensure_development_certificate(tmp_path, HOSTS[:2], NOW + timedelta(days=300))
    assert not again.created
    assert again.cert_file.read_bytes() == made.cert_file.read_bytes()


def test_made_again_near_expiry_for_new_hosts_or_without_its_key(tmp_path: Path) -> None:
    first = ensure_development_certificate(tmp_path, HOSTS, NOW)
    original = first.cert_file.read_bytes()
    near_expiry = ensure_development_certificate(tmp_path, HOSTS, NOW + timedelta(days=359))
    assert near_expiry.created
    assert near_expiry.cert_file.read_bytes() != original

    wider = (*HOSTS, "other.example")
    grown = ensure_development_certificate(tmp_path, wider, NOW)
    assert grown.created
    assert "other.example" in names(grown.cert_file)

    grown.key_file.unlink()
    assert ensure_development_certificate(tmp_path, wider, NOW).created


def test_an_openssl_client_trusts_it_as_its_own_anchor(tmp_path: Path) -> None:
    """Python's default context (and its stricter X.509 checks, where available) must
    accept the certificate once it is the only trust anchor."""
    made = ensure_development_certificate(tmp_path, HOSTS, datetime.now(UTC))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(made.cert_file, made.key_file)
    client = ssl.create_default_context(cafile=made.cert_file)
    client.verify_flags |= getattr(ssl, "VERIFY_X509_STRICT", 0)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls_client = client.wrap_bio(incoming, outgoing, server_hostname="registry.example")
    tls_server = server.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):  # drive the handshake through memory, no sockets
        for side in (tls_client, tls_server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        s_in.write(outgoing.read())
        incoming.write(s_out.read())
    tls_client.do_handshake()  # raises SSLCertVerificationError if it is not trusted
    assert ("IP Address", "127.0.0.1") in tls_client.getpeercert()["subjectAltName"]


def test_trust_instructions_name_the_file_and_each_kind_of_client(tmp_path: Path) -> None:
    made = ensure_development_certificate(tmp_path, HOSTS, NOW)
    text = trust_instructions(made, "registry.example:5000")
    path = str(made.cert_file.resolve())
    assert f"curl --cacert {path} https://registry.example:5000/v2/" in text
    assert f"--cert-dir {made.cert_file.parent.resolve()}" in text
    assert f"SSL_CERT_FILE={path}" in text and f"REQUESTS_CA_BUNDLE={path}" in text
    assert "update-ca-certificates" in text
    assert "/etc/docker/certs.d/registry.example:5000/ca.crt" in text


def test_the_server_serves_the_operators_files_or_the_development_certificate(
    tmp_path: Path,
) -> None:
    assert server_certificate(load_settings(None, data_dir=tmp_path)) is None

    made = ensure_development_certificate(tmp_path / "own", HOSTS, NOW)
    given = load_settings(
        None, data_dir=tmp_path, tls={"cert_file": made.cert_file, "key_file": made.key_file}
    )
    assert server_certificate(given) == (made.cert_file, made.key_file)
    made.key_file.unlink()
    with pytest.raises(CertificateUnusable, match="cannot read"):
        server_certificate(given)

    development = load_settings(None, data_dir=tmp_path, tls={"self_signed": True})
    cert_file, key_file = server_certificate(development) or (None, None)
    assert (cert_file, key_file) == (
        tmp_path / "tls/dockyard.crt",
        tmp_path / "tls/private/dockyard.key",
    )


@pytest.mark.parametrize(
    "tls",
    [
        {"cert_file": "a.crt"},
        {"key_file": "a.key"},
        {"self_signed": True, "cert_file": "a.crt", "key_file": "a.key"},
    ],
)
def test_tls_settings_that_cannot_work_are_refused(tls: dict) -> None:
    with pytest.raises(ValidationError, match="tls"):
        load_settings(None, tls=tls)
