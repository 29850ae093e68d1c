"""An image's package inventory: its layers read as streams from the registry's blob
store into the merged filesystem (`rootfs`), what the readers found there turned into
`Package`s, named as OSV names them. `image_packages` is the entry point the SBOMs and
the vulnerability scans share.

Distribution packages are named by their source package (dpkg's `Source`, apk's
origin), at the source's version, because OSV's Debian, Ubuntu and Alpine advisories
name those; the installed binary package is the package URL's name and version, with
the source in its `upstream` qualifier (as syft writes it). rpm packages keep their own
names (OSV's Red Hat, Rocky and Alma records name binary packages); their version is
`[epoch:]version-release`. Go versions are written without their `v`, as OSV's are."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packageurl import PackageURL

from dockyard.common.errors import ManifestInvalid, ManifestUnknown
from dockyard.core.manifest_formats import IMAGE_TYPES, Descriptor, parse_manifest
from dockyard.metadata.records import RegistryRecord
from dockyard.sbom.packages import Package
from dockyard.sbom.readers import READERS
from dockyard.sbom.readers.installed import Installed
from dockyard.sbom.rootfs import Found, Rootfs
from dockyard.storage.base import BlobStore

if TYPE_CHECKING:
    from dockyard.services import Services

LAYER_TYPES = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")


def image_packages(
    services: Services, registry: RegistryRecord, repo: str, digest: str
) -> list[Package]:
    """The packages installed in the image `repo@digest` (an image manifest, not an
    index: each of an index's platforms has its own). Reads every layer once, front to
    back; takes seconds for a large image, so callers run it in a thread."""
    record = services.meta.manifest_by_digest(registry.id, repo, digest)
    if record is None:
        raise ManifestUnknown(detail={"name": repo, "reference": digest})
    manifest = parse_manifest(record.body, record.media_type)
    if manifest.media_type not in IMAGE_TYPES:
        raise ManifestInvalid(f"{repo}@{digest} is an index: list the packages of its platforms")
    return layer_packages(services.stores.for_registry(registry.name), manifest.blobs[1:])


def layer_packages(store: BlobStore, layers: Sequence[Descriptor]) -> list[Package]:
    """The packages of the filesystem these layers make, base first."""
    rootfs = Rootfs(READERS)
    for layer in layers:
        if layer.media_type.startswith(LAYER_TYPES):
            with store.open(layer.digest) as blob:
                rootfs.apply(blob)
    return packages(rootfs.found())


def packages(found: Iterable[Found]) -> list[Package]:
    """`Package`s from what the readers found, sorted, without duplicates."""
    found = list(found)
    distro = Distro.of(f.value for f in found if f.kind == "distro")
    made: set[Package] = set()
    for item in found:
        make = _MAKERS.get(item.kind)
        if make is None:
            continue
        for installed in item.value:  # type: ignore[attr-defined]
            location = "/" + item.path + (f"!/{installed.member}" if installed.member else "")
            made.add(make(installed, distro, location))
    return sorted(made, key=lambda p: (p.ecosystem, p.name, p.version, p.purl, p.location))


@dataclass(frozen=True)
class Distro:
    """The distribution as os-release (and alpine-release) tell it."""

    id: str | None
    version_id: str | None
    version: str | None
    pretty_name: str | None
    alpine_release: str | None

    @classmethod
    def of(cls, facts: Iterable[object]) -> Distro:
        fields: dict[str, str] = {}
        for fact in facts:
            assert isinstance(fact, dict)
            for key, value in fact.items():
                fields.setdefault(key, value)  # /etc/os-release sorts before /usr/lib's
        return cls(
            fields.get("ID"),
            fields.get("VERSION_ID"),
            fields.get("VERSION"),
            fields.get("PRETTY_NAME"),
            fields.get("ALPINE_RELEASE"),
        )

    @property
    def major(self) -> str | None:
        return self.version_id.split(".")[0] if self.version_id else None

    def qualifier(self) -> str | None:
        """The package URL's `distro` qualifier: `debian-12`, `alpine-3.19.1`."""
        version = self.version_id or self.alpine_release
        if not self.id:
            return None
        return f"{self.id}-{version}" if version else self.id


def _deb(installed: Installed, distro: Distro, location: str) -> Package:
    vendor = distro.id if distro.id in ("debian", "ubuntu") else "debian"
    if vendor == "ubuntu":
        ecosystem = f"Ubuntu:{distro.version_id}" if distro.version_id else "Ubuntu"
        if distro.version and "LTS" in distro.version:
            ecosystem += ":LTS"
    else:
        ecosystem = f"Debian:{distro.major}" if distro.major else "Debian"
    return _distribution_package(
        "deb", vendor, ecosystem, installed, distro, location, installed.version
    )


def _apk(installed: Installed, distro: Distro, location: str) -> Package:
    if distro.id == "wolfi":
        ecosystem, vendor = "Wolfi", "wolfi"
    elif distro.id == "chainguard":
        ecosystem, vendor = "Chainguard", "chainguard"
    else:
        release = distro.alpine_release or distro.version_id
        minor = ".".join(release.split(".")[:2]) if release else None
        ecosystem, vendor = (f"Alpine:v{minor}" if minor else "Alpine"), "alpine"
    return _distribution_package(
        "apk", vendor, ecosystem, installed, distro, location, installed.version
    )


def _distribution_package(
    kind: str,
    vendor: str,
    ecosystem: str,
    installed: Installed,
    distro: Distro,
    location: str,
    version: str,
) -> Package:
    source = installed.source or installed.name
    source_version = installed.source_version or version
    qualifiers: dict[str, str] = {}
    if installed.arch:
        qualifiers["arch"] = installed.arch
    if distro.qualifier():
        qualifiers["distro"] = distro.qualifier()  # type: ignore[assignment]
    if source != installed.name or source_version != version:
        same = source_version == version
        qualifiers["upstream"] = source if same else f"{source}@{source_version}"
    purl = PackageURL(kind, vendor, installed.name, version, qualifiers or None)
    return Package(ecosystem, source, source_version, purl.to_string(), location)


# os-release IDs of rpm distributions: OSV's ecosystem, the package URL's namespace.
_RPM_DISTRIBUTIONS = {
    "rhel": ("Red Hat", "redhat"),
    "rocky": ("Rocky Linux:{major}", "rocky"),
    "almalinux": ("AlmaLinux:{major}", "almalinux"),
    "sles": ("SUSE:{pretty}", "suse"),
    "opensuse-leap": ("openSUSE:{pretty}", "opensuse"),
    "opensuse-tumbleweed": ("openSUSE:{pretty}", "opensuse"),
}


def _rpm(installed: Installed, distro: Distro, location: str) -> Package:
    ecosystem_form, vendor = _RPM_DISTRIBUTIONS.get(
        distro.id or "", ("{name}", distro.id or "redhat")
    )
    ecosystem = ecosystem_form.format(
        major=distro.major or "", pretty=distro.pretty_name or "", name=distro.id or "Red Hat"
    ).rstrip(":")
    qualifiers: dict[str, str] = {}
    if installed.arch:
        qualifiers["arch"] = installed.arch
    if installed.epoch:
        qualifiers["epoch"] = installed.epoch
    if distro.qualifier():
        qualifiers["distro"] = distro.qualifier()  # type: ignore[assignment]
    if installed.source and installed.source != installed.name:
        qualifiers["upstream"] = installed.source
    version = installed.version.partition(":")[2] if installed.epoch else installed.version
    purl = PackageURL("rpm", vendor, installed.name, version, qualifiers or None)
    return Package(ecosystem, installed.name, installed.version, purl.to_string(), location)


def _pypi(installed: Installed, distro: Distro, location: str) -> Package:
    purl = PackageURL("pypi", None, installed.name, installed.version)
    return Package("PyPI", installed.name, installed.version, purl.to_string(), location)


def _npm(installed: Installed, distro: Distro, location: str) -> Package:
    scope, _, name = installed.name.rpartition("/")
    purl = PackageURL("npm", scope or None, name, installed.version)
    return Package("npm", installed.name, installed.version, purl.to_string(), location)


def _go(installed: Installed, distro: Distro, location: str) -> Package:
    namespace, _, name = installed.name.rpartition("/")
    version = installed.version if installed.name == "stdlib" else f"v{installed.version}"
    purl = PackageURL("golang", namespace or None, name, version)
    return Package("Go", installed.name, installed.version, purl.to_string(), location)


def _maven(installed: Installed, distro: Distro, location: str) -> Package:
    group = installed.namespace
    name = f"{group}:{installed.name}" if group else installed.name
    purl = PackageURL("maven", group, installed.name, installed.version)
    return Package("Maven", name, installed.version, purl.to_string(), location)


_MAKERS = {
    "dpkg": _deb,
    "apk": _apk,
    "rpm": _rpm,
    "python": _pypi,
    "npm": _npm,
    "go": _go,
    "java": _maven,
}
