"""Real, tiny container images for tests, built offline with deterministic bytes.

Owns the construction of test images: a busybox root filesystem taken from Debian's
``busybox-static`` package (``/bin/busybox``), packed as one gzipped tar layer, with an
image config and a manifest, written in the on-disk formats that skopeo reads:

- an OCI image layout (``oci:DIR:TAG``): single-platform images and multi-platform
  image indexes (for ``skopeo copy --all``);
- skopeo's ``dir:`` layout holding a Docker schema2 image (``dir:DIR``), whose manifest
  bytes skopeo pushes unchanged.

Every byte is fixed (tar mtimes, owners and order; gzip header mtime 0; sorted JSON), so
digests are stable from run to run. Never touches the network and never imports pytest.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
FIXED_MTIME = 1_700_000_000  # 2023-11-14T22:13:20Z
CREATED = "2023-11-14T22:13:20Z"
BUSYBOX_APPLETS = ("sh", "ls", "cat", "echo", "true")

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

REF_NAME = "org.opencontainers.image.ref.name"

# The OCI empty descriptor's blob: the two bytes "{}".
EMPTY_JSON = b"{}"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def json_bytes(obj: object, indent: int | None = None) -> bytes:
    """Sorted-key JSON; compact unless an indent is given (manifests keep their bytes)."""
    if indent is None:
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    return json.dumps(obj, sort_keys=True, indent=indent).encode()


def descriptor(media_type: str, data: bytes, **extra: object) -> dict:
    return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data), **extra}


@dataclass(frozen=True)
class Image:
    """One single-platform image: its manifest bytes and every blob it references."""

    manifest: bytes
    media_type: str
    config: bytes
    layers: tuple[bytes, ...]
    platform: dict

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    def __repr__(self) -> str:
        return f"Image({self.media_type}, {self.digest}, {self.platform})"

    @property
    def blobs(self) -> dict[str, bytes]:
        out = {sha256_digest(self.config): self.config}
        out.update({sha256_digest(layer): layer for layer in self.layers})
        return out

    def descriptor(self) -> dict:
        return descriptor(self.media_type, self.manifest, platform=self.platform)


@dataclass(frozen=True)
class Index:
    """A multi-platform image index and its child images."""

    manifest: bytes = field(repr=False)
    media_type: str
    children: tuple[Image, ...] = field(default_factory=tuple)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def blobs(self) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        for child in self.children:
            out.update(child.blobs)
            out[child.digest] = child.manifest
        return out


@functools.cache
def busybox_layer() -> tuple[bytes, bytes]:
    """The busybox rootfs as (uncompressed tar, gzipped tar); cached, same bytes every call."""
    binary = BUSYBOX.read_bytes()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:

        def add(name: str, kind: bytes, mode: int, data: bytes = b"", link: str = "") -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = mode
            info.mtime = FIXED_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.linkname = link
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)

        add("bin/", tarfile.DIRTYPE, 0o755)
        add("bin/busybox", tarfile.REGTYPE, 0o755, binary)
        for applet in BUSYBOX_APPLETS:
            add(f"bin/{applet}", tarfile.SYMTYPE, 0o777, link="busybox")
        add("tmp/", tarfile.DIRTYPE, 0o1777)
    tar_bytes = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=6) as f:
        f.write(tar_bytes)
    return tar_bytes, gz.getvalue()


def image_config(architecture: str, variant: str | None, diff_ids: list[str]) -> bytes:
    config: dict = {
        "architecture": architecture,
        "os": "linux",
        "created": CREATED,
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": CREATED, "created_by": "dockyard tests/images.py"}],
    }
    if variant:
        config["variant"] = variant
    return json_bytes(config)


def platform_of(architecture: str) -> tuple[dict, str | None]:
    variant = "v8" if architecture == "arm64" else None
    platform = {"architecture": architecture, "os": "linux"}
    if variant:
        platform["variant"] = variant
    return platform, variant


def busybox_image(architecture: str = "amd64", docker: bool = False) -> Image:
    """A busybox image for one platform, as an OCI manifest or a Docker schema2 manifest.

    Every platform carries the same (amd64) busybox bytes; only the config differs, which
    is enough for a registry, which never runs what it stores.
    """
    tar_bytes, layer = busybox_layer()
    platform, variant = platform_of(architecture)
    config = image_config(architecture, variant, [sha256_digest(tar_bytes)])
    if docker:
        media_type = DOCKER_MANIFEST
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(DOCKER_CONFIG, config),
            "layers": [descriptor(DOCKER_LAYER_GZIP, layer)],
        }
        # Three-space indent, as Docker's own tools print schema2 manifests: a registry
        # that re-serialises JSON instead of keeping the bytes breaks every digest.
        manifest_bytes = json_bytes(manifest, indent=3)
    else:
        media_type = OCI_MANIFEST
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER_GZIP, layer)],
            "annotations": {"org.opencontainers.image.created": CREATED},
        }
        manifest_bytes = json_bytes(manifest, indent=2)
    return Image(manifest_bytes, media_type, config, (layer,), platform)


def busybox_index(architectures: tuple[str, ...] = ("amd64", "arm64")) -> Index:
    """An OCI image index over one busybox image per architecture."""
    children = tuple(busybox_image(arch) for arch in architectures)
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [child.descriptor() for child in children],
    }
    return Index(json_bytes(index, indent=2), OCI_INDEX, children)


def write_oci_layout(directory: Path, refs: dict[str, Image | Index]) -> Path:
    """Write an OCI image layout holding each image or index under its tag.

    Usable as ``oci:DIRECTORY:TAG`` by skopeo. Returns the directory.
    """
    directory = Path(directory)
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    entries = []
    for tag, item in refs.items():
        all_blobs = dict(item.blobs)
        all_blobs[item.digest] = item.manifest
        for digest, data in all_blobs.items():
            (blobs / digest.removeprefix("sha256:")).write_bytes(data)
        entries.append(descriptor(item.media_type, item.manifest, annotations={REF_NAME: tag}))
    (directory / "oci-layout").write_bytes(json_bytes({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (directory / "index.json").write_bytes(json_bytes(index))
    return directory


def write_dir_layout(directory: Path, image: Image) -> Path:
    """Write one image in skopeo's ``dir:`` format (manifest.json + blobs by hex digest).

    Returns the directory, usable as ``dir:DIRECTORY``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "version").write_text("Directory Transport Version: 1.1\n")
    (directory / "manifest.json").write_bytes(image.manifest)
    for digest, data in image.blobs.items():
        (directory / digest.removeprefix("sha256:")).write_bytes(data)
    return directory


def read_oci_layout(directory: Path) -> tuple[dict, dict[str, bytes]]:
    """Read an OCI image layout back: (index.json as a dict, {digest: blob bytes})."""
    directory = Path(directory)
    index = json.loads((directory / "index.json").read_bytes())
    blobs = {
        "sha256:" + path.name: path.read_bytes()
        for path in (directory / "blobs" / "sha256").iterdir()
    }
    return index, blobs


def oci_layout_ref(directory: Path, tag: str) -> dict:
    """The index.json descriptor that names ``tag`` in an OCI layout."""
    index, _ = read_oci_layout(directory)
    matches = [d for d in index["manifests"] if (d.get("annotations") or {}).get(REF_NAME) == tag]
    if len(matches) != 1:
        raise LookupError(f"{directory}: {len(matches)} entries named {tag!r}")
    return matches[0]


def read_dir_layout(directory: Path) -> tuple[bytes, dict[str, bytes]]:
    """Read a ``dir:`` layout: (manifest bytes, {digest: blob bytes})."""
    directory = Path(directory)
    blobs = {
        "sha256:" + path.name: path.read_bytes()
        for path in directory.iterdir()
        if len(path.name) == 64
    }
    return (directory / "manifest.json").read_bytes(), blobs
