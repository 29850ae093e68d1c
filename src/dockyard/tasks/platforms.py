"""The platforms a run builds for. ACR's run request names one (`platform`: os,
architecture, variant); Dockyard also takes a comma list in `architecture`
(`amd64,arm64/v8`, what `dockyard build --platform linux/amd64,linux/arm64/v8` sends),
built into one image index. Pure: no I/O."""

from __future__ import annotations

import platform as host
from dataclasses import dataclass
from typing import Any

from dockyard.common.errors import RequestInvalid

ARCHITECTURES = ("amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64")
_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "x86": "386", "i386": "386"}
_VARIANTS = {"arm": ("v6", "v7", "v8"), "arm64": ("v8",)}


class PlatformInvalid(RequestInvalid):
    code = "InvalidParameter"


class PlatformUnsupported(RequestInvalid):
    code = "NotSupported"


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @property
    def text(self) -> str:
        """`linux/arm64/v8`, as buildah's `--platform` takes it."""
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def slug(self) -> str:
        return self.text.replace("/", "-")

    def oci(self) -> dict[str, str]:
        """The platform of an image index's entry."""
        entry = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            entry["variant"] = self.variant
        return entry

    def skopeo_options(self) -> list[str]:
        """skopeo's global options choosing this platform of a multi-platform image."""
        options = ["--override-os", self.os, "--override-arch", self.architecture]
        return [*options, "--override-variant", self.variant] if self.variant else options


def host_platform() -> Platform:
    machine = host.machine().lower()
    return Platform("linux", _ALIASES.get(machine, machine))


def checked_platform(value: Any) -> dict[str, str]:
    """A request's `platform` as a run keeps it: os `linux`, architecture one of
    `ARCHITECTURES` (aliases such as `x86_64` taken) or a comma list of `ARCH[/VARIANT]`,
    `variant` when one architecture has one."""
    platform = value or {}
    if not isinstance(platform, dict):
        raise PlatformInvalid("platform must be an object")
    os_name = str(platform.get("os") or "linux").lower()
    if os_name != "linux":
        raise PlatformUnsupported(f"platform {os_name}: Dockyard builds Linux images only")
    given = str(platform.get("architecture") or "amd64").lower()
    variant = platform.get("variant")
    entries = [e.strip() for e in given.split(",")]
    if variant and len(entries) == 1 and "/" not in entries[0]:
        entries = [f"{entries[0]}/{str(variant).lower()}"]
    parsed = [_entry(e) for e in entries]
    if len(set(parsed)) != len(parsed):
        raise PlatformInvalid(f"platform {given}: an architecture is named twice")
    if len(parsed) == 1:
        architecture, variant = parsed[0]
        stored = {"os": "linux", "architecture": architecture}
        return {**stored, "variant": variant} if variant else stored
    text = ",".join(a if v is None else f"{a}/{v}" for a, v in parsed)
    return {"os": "linux", "architecture": text}


def _entry(text: str) -> tuple[str, str | None]:
    architecture, _, variant = text.partition("/")
    architecture = _ALIASES.get(architecture, architecture)
    if architecture not in ARCHITECTURES:
        raise PlatformInvalid(
            f"architecture {architecture!r}: one of {', '.join(ARCHITECTURES)} expected"
        )
    if variant and variant not in _VARIANTS.get(architecture, ()):
        raise PlatformInvalid(f"{architecture} has no variant {variant!r}")
    return architecture, variant or None


def platforms_of(stored: dict[str, str]) -> list[Platform]:
    """The platforms of a run's kept `platform` (`checked_platform`'s output)."""
    entries = stored.get("architecture", "amd64").split(",")
    if len(entries) == 1 and stored.get("variant"):
        return [Platform("linux", entries[0], stored["variant"])]
    platforms = []
    for entry in entries:
        architecture, _, variant = entry.partition("/")
        platforms.append(Platform("linux", architecture, variant or None))
    return platforms


def from_text(text: str) -> dict[str, str]:
    """`linux/amd64,linux/arm64/v8` (the CLI's `--platform`) as a request's `platform`."""
    entries = []
    for item in text.split(","):
        parts = item.strip().split("/")
        if parts[0].lower() != "linux" or not 2 <= len(parts) <= 3:
            raise PlatformInvalid(f"{item!r}: give linux/ARCH or linux/ARCH/VARIANT")
        entries.append("/".join(parts[1:]))
    return checked_platform({"os": "linux", "architecture": ",".join(entries)})
