"""HTTPS for `dockyard serve`: the development certificate `--tls self-signed` makes, and
the words that tell a person how to make clients trust it.

The certificate is its own trust anchor (no CA): an end-entity certificate (CA:FALSE,
serverAuth) with key identifiers, which OpenSSL, Go (skopeo, podman, docker) and
Python's strict verification all accept once it is in their trust store. It is kept in
`DATA_DIR/tls/` and reused by later starts, so clients trust it once; it is made again
only when it expires within a week, its key is gone, or its names no longer cover the
hosts the server answers to. The private key sits in `tls/private/`, because skopeo's
`--cert-dir` takes every `*.key` beside the certificate for a client key.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=365)
RENEW_BEFORE = timedelta(days=7)
CERT_NAME = "dockyard.crt"
KEY_NAME = "private/dockyard.key"


@dataclass(frozen=True)
class DevelopmentCertificate:
    cert_file: Path
    key_file: Path
    hosts: tuple[str, ...]
    not_after: datetime
    created: bool  # False: an earlier start's certificate, reused


def hosts_to_cover(listen: str, login_server: str) -> tuple[str, ...]:
    """The names the development certificate is for: the loopback names, the listen
    address's host (or, for a wildcard address, this machine's name) and the login
    server's host."""
    hosts = ["localhost", "127.0.0.1", "::1"]
    for address in (listen, login_server):
        host = host_of(address)
        if host and _is_wildcard(host):
            host = socket.gethostname()
        if host and host.lower() not in hosts:
            hosts.append(host.lower())
    return tuple(hosts)


def host_of(address: str) -> str:
    """`host:port`, `[v6]:port`, `host` or a bare IPv6 address, to its host."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    if address.count(":") > 1:
        return address
    return address.partition(":")[0]


def ensure_development_certificate(
    directory: Path, hosts: tuple[str, ...], now: datetime | None = None
) -> DevelopmentCertificate:
    """The certificate in `directory` if it still fits `hosts`, else a new one."""
    now = now or datetime.now(UTC)
    cert_file, key_file = directory / CERT_NAME, directory / KEY_NAME
    reusable = _reusable(cert_file, key_file, hosts, now)
    if reusable is not None:
        return DevelopmentCertificate(cert_file, key_file, reusable[0], reusable[1], False)
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = _certificate(key, hosts, now)
    key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_atomically(
        key_file,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        0o600,
    )
    _write_atomically(cert_file, certificate.public_bytes(serialization.Encoding.PEM), 0o644)
    return DevelopmentCertificate(cert_file, key_file, hosts, certificate.not_valid_after_utc, True)


def trust_instructions(cert: DevelopmentCertificate, login_server: str) -> str:
    """What a person must do so that each kind of client trusts the certificate."""
    path = cert.cert_file.resolve()
    return f"""\
Dockyard serves HTTPS with a self-signed development certificate (it is its own CA):
    {path}
    for {", ".join(cert.hosts)}; valid until {cert.not_after:%Y-%m-%d}
Clients refuse it until told to trust it:
    curl:          curl --cacert {path} https://{login_server}/v2/
    skopeo/podman: skopeo inspect --cert-dir {path.parent} docker://{login_server}/REPO:TAG
                   (or for good: cp {path} /etc/containers/certs.d/{login_server}/ca.crt)
    docker:        cp {path} /etc/docker/certs.d/{login_server}/ca.crt
    Python, Azure SDK and az CLI:
                   export SSL_CERT_FILE={path} REQUESTS_CA_BUNDLE={path}
    the whole machine (Debian, Ubuntu):
                   cp {path} /usr/local/share/ca-certificates/dockyard.crt && update-ca-certificates
It is reused on every start; delete {path.parent} to make a new one."""


def _reusable(
    cert_file: Path, key_file: Path, hosts: tuple[str, ...], now: datetime
) -> tuple[tuple[str, ...], datetime] | None:
    """The names and end of validity of a certificate that can serve on, or None."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if key.public_key() != certificate.public_key():
        return None
    if certificate.not_valid_after_utc - RENEW_BEFORE <= now:
        return None
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    covered = {name.lower() for name in names.get_values_for_type(x509.DNSName)}
    covered |= {str(address) for address in names.get_values_for_type(x509.IPAddress)}
    if not all(_canonical(host) in covered for host in hosts):
        return None
    return tuple(sorted(covered)), certificate.not_valid_after_utc


def _certificate(
    key: ec.EllipticCurvePrivateKey, hosts: tuple[str, ...], now: datetime
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Dockyard development certificate")])
    alternative_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alternative_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alternative_names.append(x509.DNSName(host))
    public_key = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))  # clients whose clocks lag a little
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public_key), critical=False
        )
        .sign(key, hashes.SHA256())
    )


def _canonical(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Whole or not at all: a start killed half-way must not leave a torn key."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
