"""The vulnerability pull policy against a real server and a real client: an image
pushed with skopeo, scanned (with packages this test chooses, standing in for the SBOM
inventory) by the offline side on the server's own data directory, then refused to
`skopeo copy` with `DENIED` naming the worst finding once `dockyard scan policy`
enables the policy, and let through once its advisory is allowlisted. The server
notices both changes on its next request (the read cache's counters)."""

from __future__ import annotations

from pathlib import Path

import images
from osv_facts import ALL, deb, pypi, write_zip
from typer.testing import CliRunner

from dockyard.cli.local import local_services
from dockyard.cli.main import app
from dockyard.metadata.records import RegistryRecord
from dockyard.sbom.packages import Package
from dockyard.scanning.scanner import Scanner

TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


def packages_of(registry: RegistryRecord, repo: str, digest: str) -> list[Package]:
    return [deb("libc6", "2.36-9+deb12u1", source="glibc"), pypi("requests", "2.30.0")]


def policy(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["scan", "policy", *args, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    return result.output


def test_skopeo_is_refused_a_vulnerable_image(fresh_registry, skopeo, tmp_path: Path) -> None:
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": images.busybox_image()})
    dest = f"docker://{fresh_registry.host}/app/web:1"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", dest)
    data_dir = fresh_registry.data_dir
    with local_services(None, data_dir, None) as services:
        services.vuln_db.import_files([write_zip(tmp_path / "all.zip", ALL)])
        record = services.registries.for_host("")
        digest = services.meta.manifest_by_tag(record.id, "app/web", "1").digest
        scanner = Scanner(
            services.meta, services.vuln_db, packages_of, services.uploads, services.manifests
        )
        assert scanner.scan(record, "app/web", digest) is not None
    policy(data_dir, "--enable", "--severity", "high")
    refused = skopeo("copy", *TLS_OFF, dest, f"oci:{tmp_path / 'back'}:1", check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower(), refused.stderr
    assert "DSA-5514-1 (high) in libc6 2.36-9+deb12u1" in refused.stderr, refused.stderr
    policy(data_dir, "--allow", "DSA-5514-1")
    skopeo("copy", *TLS_OFF, dest, f"oci:{tmp_path / 'back'}:1")
