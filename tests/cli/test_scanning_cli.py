"""`dockyard vulndb import` and `dockyard scan`, offline on a data directory: an OSV
export zip of real advisories imported with counts, again with nothing changed, a newer
version of one record replacing it, a withdrawn one removing it, a file that is not an
export refused; `scan show` of an image scanned with the test's packages; the pull
policy and scan on push set and shown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

from images import busybox_image
from osv_facts import ALL, LODASH, REQUESTS, deb, pypi, write_zip
from typer.testing import CliRunner

from dockyard.cli.local import local_services
from dockyard.cli.main import app
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.scanning import database_state
from dockyard.sbom.packages import Package
from dockyard.scanning.scanner import Scanner
from dockyard.server import prepare
from dockyard.settings import load_settings


def run(data_dir: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def prepared(data_dir: Path) -> Path:
    prepare(load_settings(None, data_dir=data_dir, auth={"enabled": False}))
    return data_dir


def test_imports_count_what_changed_and_are_idempotent(tmp_path: Path) -> None:
    data = prepared(tmp_path / "data")
    export = write_zip(tmp_path / "all.zip", ALL)
    assert "read 6 records: 6 added, 0 replaced, 0 unchanged, 0 withdrawn" in run(
        data, "vulndb", "import", str(export)
    )
    again = run(data, "vulndb", "import", str(export))
    assert "read 6 records: 0 added, 0 replaced, 6 unchanged" in again
    assert "The database holds 6 advisories (5 affected packages)" in again
    newer = dict(REQUESTS, modified="2024-06-01T00:00:00Z")
    withdrawn = dict(LODASH, modified="2024-06-01T00:00:00Z", withdrawn="2024-06-01T00:00:00Z")
    (tmp_path / "newer.json").write_text(json.dumps([newer, withdrawn]))
    older = dict(REQUESTS, modified="2020-01-01T00:00:00Z")
    (tmp_path / "older.json").write_text(json.dumps(older))
    changed = run(
        data, "vulndb", "import", str(tmp_path / "newer.json"), str(tmp_path / "older.json")
    )
    assert "read 3 records: 0 added, 1 replaced, 1 unchanged, 1 withdrawn" in changed
    assert "The database holds 5 advisories (4 affected packages)" in changed
    assert "5 advisories, 4 affected packages" in run(data, "vulndb", "status")
    (tmp_path / "junk.json").write_text("not json")
    assert "junk.json: not an OSV export" in run(
        data, "vulndb", "import", str(tmp_path / "junk.json"), code=1
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def test_scan_show_and_the_policies(tmp_path: Path) -> None:
    data = prepared(tmp_path / "data")
    run(data, "vulndb", "import", str(write_zip(tmp_path / "all.zip", ALL)))

    def packages_of(registry: RegistryRecord, repo: str, digest: str) -> list[Package]:
        return [deb("libc6", "2.36-9+deb12u1", source="glibc"), pypi("requests", "2.30.0")]

    image = busybox_image()
    with local_services(None, data, None) as services:
        record = services.registries.for_host("")
        for blob_digest, blob in image.blobs.items():
            asyncio.run(services.uploads.upload_whole(record, "app/web", blob_digest, _once(blob)))
        digest = services.manifests.put(
            record, "app/web", "1", image.manifest, image.media_type
        ).digest
        Scanner(
            services.meta, services.vuln_db, packages_of, services.uploads, services.manifests
        ).scan(record, "app/web", digest)
    shown = run(data, "scan", "show", "app/web:1")
    assert f"app/web@{digest}: worst high (1 high, 1 medium)" in shown
    cells = [cell.strip() for cell in shown.split("│")]
    assert "DSA-5514-1" in cells and "libc6" in cells, shown
    assert shown.index("DSA-5514-1") < shown.index("requests")  # worst first
    as_json = json.loads(
        CliRunner()
        .invoke(app, ["scan", "show", f"app/web@{digest}", "--json", "--data-dir", str(data)])
        .output
    )
    assert as_json["worst"] == "high"
    assert [
        (f["advisory"], f["package"], f["installed"], f["fixed"]) for f in as_json["findings"]
    ] == [
        ("DSA-5514-1", "libc6", "2.36-9+deb12u1", "2.36-9+deb12u3"),
        ("GHSA-j8r2-6x86-q33q", "requests", "2.30.0", "2.31.0"),
    ]
    assert "not scanned" in run(data, "scan", "show", "app/web@" + as_json["reportDigest"])
    assert "scan on push: on" in run(data, "scan", "config", "--on-push")
    policy = run(
        data,
        "scan",
        "policy",
        "--enable",
        "--severity",
        "HIGH",
        "--allow",
        "CVE-2023-4911",
        "--repository",
        "app/*",
    )
    assert "refuses high or worse; allowlist: CVE-2023-4911; repositories: app/*" in policy
    assert "severity must be one of" in run(data, "scan", "policy", "--severity", "bad", code=1)
    cleared = run(data, "scan", "policy", "--clear-allowlist", "--all-repositories")
    assert "allowlist: none; repositories: all" in cleared
    with local_services(None, data, None) as services:
        assert database_state(services.meta)[0] == 6
