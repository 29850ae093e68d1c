"""OSV records written by the tests from real advisories' facts (ids, aliases, packages,
affected and fixed versions, CVSS vectors as the advisories publish them), and export
files made of them as osv.dev makes them: a zip with one JSON record per advisory.

- DSA-5514-1: glibc in Debian 12, fixed in 2.36-9+deb12u3 (CVE-2023-4911, "Looney
  Tunables"); Debian's records rate nothing, so CVE-2023-4911's own record (NVD's
  vector, 7.8) gives the severity through the alias.
- GHSA-j8r2-6x86-q33q: PyPI `requests` from 2.3.0, fixed in 2.31.0 (CVE-2023-32681).
- GHSA-35jh-r3h4-6jhm: npm `lodash` before 4.17.21 (CVE-2021-23337), a SEMVER range.
- GO-2023-2102: Go module golang.org/x/net before 0.17.0 (CVE-2023-39325, HTTP/2 rapid
  reset), a SEMVER range.
- openssl in Alpine v3.18, fixed in 3.1.4-r0 (CVE-2023-5363)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from dockyard.sbom.packages import Package


def _record(
    id: str, modified: str, aliases: list[str], affected: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": id,
        "modified": modified,
        "published": "2023-10-03T18:15:00Z",
        "aliases": aliases,
        "affected": affected,
        **extra,
    }


def _package(
    ecosystem: str, name: str, events: list[dict[str, str]], kind: str = "ECOSYSTEM"
) -> dict[str, Any]:
    return {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": [{"type": kind, "events": events}],
    }


GLIBC = _record(
    "DSA-5514-1",
    "2023-10-03T18:27:00Z",
    ["CVE-2023-4527", "CVE-2023-4806", "CVE-2023-4911"],
    [_package("Debian:12", "glibc", [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}])],
    summary="glibc - security update",
)
GLIBC_CVE = _record(
    "CVE-2023-4911",
    "2024-02-01T00:00:00Z",
    [],
    [],
    severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H"}],
    summary="A buffer overflow in the GNU C Library's dynamic loader (GLIBC_TUNABLES)",
)
REQUESTS = _record(
    "GHSA-j8r2-6x86-q33q",
    "2023-05-26T00:00:00Z",
    ["CVE-2023-32681", "PYSEC-2023-74"],
    [_package("PyPI", "requests", [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}])],
    severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N"}],
    summary="Unintended leak of Proxy-Authorization header in requests",
)
LODASH = _record(
    "GHSA-35jh-r3h4-6jhm",
    "2021-02-15T00:00:00Z",
    ["CVE-2021-23337"],
    [_package("npm", "lodash", [{"introduced": "0"}, {"fixed": "4.17.21"}], "SEMVER")],
    severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"}],
    summary="Command Injection in lodash",
)
X_NET = _record(
    "GO-2023-2102",
    "2023-10-11T00:00:00Z",
    ["CVE-2023-39325", "GHSA-4374-p667-p6c8"],
    [_package("Go", "golang.org/x/net", [{"introduced": "0"}, {"fixed": "0.17.0"}], "SEMVER")],
    summary="HTTP/2 rapid reset can cause excessive work in net/http",
)
OPENSSL = _record(
    "ALPINE-CVE-2023-5363",
    "2023-10-25T00:00:00Z",
    ["CVE-2023-5363"],
    [_package("Alpine:v3.18", "openssl", [{"introduced": "0"}, {"fixed": "3.1.4-r0"}])],
    database_specific={"severity": "HIGH"},
)
ALL = [GLIBC, GLIBC_CVE, REQUESTS, LODASH, X_NET, OPENSSL]


def write_zip(path: Path, records: list[dict[str, Any]]) -> Path:
    """An export as osv.dev publishes `<ECOSYSTEM>/all.zip`: `<id>.json` per record."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in records:
            archive.writestr(f"{record['id']}.json", json.dumps(record))
    return path


def deb(name: str, version: str, source: str | None = None) -> Package:
    upstream = f"&upstream={source}" if source else ""
    return Package(
        "Debian:12",
        name,
        version,
        f"pkg:deb/debian/{name}@{version}?arch=amd64{upstream}&distro=debian-12",
        "/var/lib/dpkg/status",
    )


def pypi(name: str, version: str) -> Package:
    return Package(
        "PyPI",
        name,
        version,
        f"pkg:pypi/{name.lower()}@{version}",
        f"/usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA",
    )


def npm(name: str, version: str) -> Package:
    return Package(
        "npm", name, version, f"pkg:npm/{name}@{version}", f"/app/node_modules/{name}/package.json"
    )


def go(module: str, version: str) -> Package:
    return Package("Go", module, version, f"pkg:golang/{module}@{version}", "/usr/local/bin/app")


def apk(name: str, version: str) -> Package:
    return Package(
        "Alpine:v3.18",
        name,
        version,
        f"pkg:apk/alpine/{name}@{version}?arch=x86_64&distro=3.18.4",
        "/lib/apk/db/installed",
    )
