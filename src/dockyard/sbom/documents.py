"""An image's packages written as the two SBOM formats common tools read: SPDX 2.3 JSON
(through `spdx-tools`) and CycloneDX 1.6 JSON (through `cyclonedx-python-lib`). The
image is the document's described package (SPDX) or its metadata component
(CycloneDX), and contains every package.

A document depends only on its arguments: the same image, packages and time make the
same bytes, so an event handled twice stores one SBOM (`sbom/generation.py`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import orjson
from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependency
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.model import Package as SpdxPackage
from spdx_tools.spdx.writer.write_utils import convert

from dockyard import __version__
from dockyard.sbom.packages import Package

SPDX_JSON = "application/spdx+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
TOOL = f"dockyard-{__version__}"
# Where a package was read from, as a CycloneDX property (the name is a namespace of
# Dockyard's own, as CycloneDX's property taxonomy asks of tools).
LOCATION_PROPERTY = "dockyard:package:location"
# Package URL types whose namespace is the distribution's vendor, not part of the name.
DISTRIBUTION_TYPES = frozenset({"deb", "apk", "rpm"})
_NAMESPACE = uuid.UUID("6f1c2f5e-8e0b-4a51-9a8e-5d0b4f3a7c21")  # Dockyard's SBOM documents


@dataclass(frozen=True)
class Subject:
    """The image an SBOM describes."""

    login_server: str
    repository: str
    digest: str

    @property
    def reference(self) -> str:
        return f"{self.login_server}/{self.repository}@{self.digest}"

    def purl(self) -> str:
        """The image's package URL (`pkg:oci/<name>@<digest>?repository_url=...`)."""
        name = self.repository.rpartition("/")[2]
        qualifiers = {"repository_url": f"{self.login_server}/{self.repository}"}
        return PackageURL("oci", None, name, self.digest, qualifiers).to_string()

    def uuid(self, kind: str) -> uuid.UUID:
        return uuid.uuid5(_NAMESPACE, f"{kind} {self.reference}")


def spdx_json(subject: Subject, packages: Sequence[Package], created: datetime) -> bytes:
    """The SPDX 2.3 JSON document."""
    image = SpdxPackage(
        "SPDXRef-Image",
        subject.repository,
        SpdxNoAssertion(),
        version=subject.digest,
        files_analyzed=False,
        external_references=[_purl_reference(subject.purl())],
        primary_package_purpose=PackagePurpose.CONTAINER,
    )
    listed = [image]
    relationships = [Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, image.spdx_id)]
    for number, package in enumerate(packages, 1):
        purl = PackageURL.from_string(package.purl)
        spdx_id = f"SPDXRef-Package-{number}"
        listed.append(
            SpdxPackage(
                spdx_id,
                _name(purl),
                SpdxNoAssertion(),
                version=purl.version,
                files_analyzed=False,
                source_info=f"installed at {package.location} ({package.ecosystem})",
                external_references=[_purl_reference(package.purl)],
            )
        )
        relationships.append(Relationship(image.spdx_id, RelationshipType.CONTAINS, spdx_id))
    creation = CreationInfo(
        spdx_version="SPDX-2.3",
        spdx_id="SPDXRef-DOCUMENT",
        name=subject.reference,
        document_namespace=f"https://{subject.login_server}/spdx/{subject.uuid('spdx')}",
        creators=[Actor(ActorType.TOOL, TOOL)],
        created=created.replace(microsecond=0),
    )
    document = Document(creation, packages=listed, relationships=relationships)
    # Written without `spdx-tools`' validation, which is quadratic in the packages (a
    # minute for a few thousand): the tests parse and validate what this writes.
    return orjson.dumps(convert(document, None))


def cyclonedx_json(subject: Subject, packages: Sequence[Package], created: datetime) -> bytes:
    """The CycloneDX 1.6 JSON document."""
    image = Component(
        type=ComponentType.CONTAINER,
        name=subject.repository,
        version=subject.digest,
        purl=PackageURL.from_string(subject.purl()),
        bom_ref=subject.purl(),
    )
    bom = Bom(serial_number=subject.uuid("cyclonedx"))
    bom.metadata.timestamp = created.replace(microsecond=0)
    bom.metadata.component = image
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="dockyard", version=__version__)
    )
    components = []
    for number, package in enumerate(packages, 1):
        purl = PackageURL.from_string(package.purl)
        components.append(
            Component(
                type=ComponentType.LIBRARY,
                name=purl.name,
                group=None if purl.type in DISTRIBUTION_TYPES else purl.namespace,
                version=purl.version,
                purl=purl,
                bom_ref=f"{package.purl}#{number}",
                properties=[Property(name=LOCATION_PROPERTY, value=package.location)],
            )
        )
    bom.components.update(components)
    # The image depends on every package, each on nothing (`Bom.register_dependency`
    # would do the same, looking each one up in the whole graph: quadratic).
    contained = [Dependency(ref=c.bom_ref) for c in components]
    bom.dependencies.update([Dependency(ref=image.bom_ref, dependencies=contained), *contained])
    return JsonV1Dot6(bom).output_as_string(indent=None).encode()


def _name(purl: PackageURL) -> str:
    """A package's name as its ecosystem writes it: a distribution's plain, npm's with
    its scope, Maven's with its group, Go's as the module path."""
    if purl.namespace is None or purl.type in DISTRIBUTION_TYPES:
        return purl.name
    return f"{purl.namespace}{':' if purl.type == 'maven' else '/'}{purl.name}"


def _purl_reference(purl: str) -> ExternalPackageRef:
    return ExternalPackageRef(ExternalPackageRefCategory.PACKAGE_MANAGER, "purl", purl)
