"""The SBOM documents are valid: the SPDX 2.3 JSON parsed back and validated by
`spdx-tools`, the CycloneDX 1.6 JSON by `cyclonedx-python-lib`'s strict JSON schema
validator; both list every package with its package URL, and the same arguments make
the same bytes."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import image_contents as contents
import orjson
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.json.json_parser import parse_from_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from dockyard.sbom.documents import Subject, cyclonedx_json, spdx_json
from dockyard.sbom.inventory import packages
from dockyard.sbom.packages import Package
from dockyard.sbom.readers import READERS
from dockyard.sbom.rootfs import Rootfs

SUBJECT = Subject("registry.example:5000", "team/app", "sha256:" + "ab" * 32)
CREATED = datetime(2026, 12, 6, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def listed() -> list[Package]:
    """Packages of every kind: this machine's dpkg status, Python, scoped npm, Maven."""
    layer = contents.gzip_layer(
        {
            "etc/os-release": Path("/etc/os-release").read_bytes(),
            "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes(),
            **dict(contents.dist_info(name, v) for name, v in contents.OLD_PYTHON.items()),
            "app/node_modules/@babel/core/package.json": b'{"name":"@babel/core","version":"7"}',
            "app/lib/log4j.jar": contents.jar("org.apache.logging.log4j", "log4j-core", "2.14.1"),
        }
    )
    rootfs = Rootfs(READERS)
    rootfs.apply(io.BytesIO(layer))
    return packages(rootfs.found())


def test_spdx_is_valid_and_lists_every_package(listed: list[Package], tmp_path: Path) -> None:
    written = spdx_json(SUBJECT, listed, CREATED)
    assert written == spdx_json(SUBJECT, listed, CREATED)
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(written)
    document = parse_from_file(str(path))
    assert validate_full_spdx_document(document) == []
    # UTC, to the second (spdx-tools reads the "Z" time back without a zone).
    assert document.creation_info.created == CREATED.replace(microsecond=0, tzinfo=None)
    purls = {
        ref.locator for package in document.packages[1:] for ref in package.external_references
    }
    assert purls == {package.purl for package in listed}
    names = {package.name for package in document.packages}
    assert {"@babel/core", "org.apache.logging.log4j:log4j-core", "libc6", "jinja2"} <= names


def test_cyclonedx_is_valid_and_lists_every_package(listed: list[Package]) -> None:
    written = cyclonedx_json(SUBJECT, listed, CREATED)
    assert written == cyclonedx_json(SUBJECT, listed, CREATED)
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(written.decode()) is None
    bom = orjson.loads(written)
    assert bom["metadata"]["component"]["purl"] == (
        "pkg:oci/app@sha256:" + "ab" * 32 + "?repository_url=registry.example:5000/team/app"
    )
    assert {c["purl"] for c in bom["components"]} == {p.purl for p in listed}
    assert len(bom["components"]) == len(listed)
    locations = {prop["value"] for c in bom["components"] for prop in c.get("properties", [])}
    assert "/app/lib/log4j.jar" in locations and "/var/lib/dpkg/status" in locations
