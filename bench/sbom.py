#!/usr/bin/env python3
"""How long an image's package inventory and its two SBOM documents take: for the test
suite's busybox image, and for a generated image of about 1,000 packages and 500 MB
(this machine's dpkg status, SeaweedFS's `weed` (a Go binary of ~260 modules), Python
and npm packages, and incompressible filler, in three gzip layers, the last deleting
some packages with whiteouts).

    .venv/bin/python bench/sbom.py [--filler-mb 350] [--repeat 3]

The layers are written to a temporary directory first (not timed), then read back as
the registry reads its blobs: streamed from files, front to back, once per run. Prints
the best and median of each figure; run it on an idle machine (`uptime` below 1.5)."""

from __future__ import annotations

import argparse
import gzip
import io
import os
import statistics
import sys
import tarfile
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import images  # noqa: E402  (the test suite's busybox image)

from dockyard.sbom.documents import Subject, cyclonedx_json, spdx_json  # noqa: E402
from dockyard.sbom.inventory import packages  # noqa: E402
from dockyard.sbom.readers import READERS  # noqa: E402
from dockyard.sbom.rootfs import Rootfs  # noqa: E402

SITE = "usr/local/lib/python3.11/site-packages"
WEED = Path(sys.executable).parent / "weed"


def tar_gz(path: Path, files: list[tuple[str, bytes, int]]) -> None:
    """A gzip layer at `path` of (name, bytes, mode) entries, compressed fast."""
    with (
        path.open("wb") as out,
        gzip.GzipFile(fileobj=out, mode="wb", compresslevel=1, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w|") as tar,
    ):
        for name, data, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))


def filler(size: int) -> bytes:
    """Incompressible bytes: gzip stores them, as it would a real image's compressed
    assets."""
    return os.urandom(size)


def generated_image(directory: Path, filler_mb: int) -> list[Path]:
    base = [
        ("etc/os-release", Path("/etc/os-release").read_bytes(), 0o644),
        ("var/lib/dpkg/status", Path("/var/lib/dpkg/status").read_bytes(), 0o644),
        ("usr/bin/weed", WEED.read_bytes(), 0o755),
        ("opt/filler.bin", filler(filler_mb << 20), 0o644),
    ]
    apps: list[tuple[str, bytes, int]] = []
    for n in range(150):
        metadata = f"Metadata-Version: 2.1\nName: package-{n}\nVersion: 1.{n}.0\n\n"
        apps.append((f"{SITE}/package_{n}-1.{n}.0.dist-info/METADATA", metadata.encode(), 0o644))
    for n in range(100):
        manifest = f'{{"name": "module-{n}", "version": "2.{n}.0"}}'
        apps.append((f"srv/node_modules/module-{n}/package.json", manifest.encode(), 0o644))
    removal = [(f"{SITE}/.wh.package_{n}-1.{n}.0.dist-info", b"", 0o644) for n in range(10)]
    paths = []
    for number, files in enumerate((base, apps, removal)):
        path = directory / f"layer-{number}.tar.gz"
        tar_gz(path, files)
        paths.append(path)
    return paths


def measure(name: str, layers: list[Path], repeat: int) -> None:
    inventory_seconds, document_seconds = [], []
    found = []
    for _ in range(repeat):
        started = time.perf_counter()
        rootfs = Rootfs(READERS)
        for layer in layers:
            with layer.open("rb") as blob:
                rootfs.apply(blob)
        found = packages(rootfs.found())
        inventory_seconds.append(time.perf_counter() - started)
        subject = Subject("localhost:5000", "bench/sbom", "sha256:" + "0" * 64)
        started = time.perf_counter()
        spdx_json(subject, found, datetime.now(UTC))
        cyclonedx_json(subject, found, datetime.now(UTC))
        document_seconds.append(time.perf_counter() - started)
    size = sum(layer.stat().st_size for layer in layers)
    unpacked = sum(_unpacked(layer) for layer in layers)
    print(
        f"{name}: {size / 1e6:.1f} MB ({unpacked / 1e6:.1f} MB unpacked) in {len(layers)} "
        f"layers, {len(found)} packages; "
        f"inventory best {min(inventory_seconds):.2f} s, median "
        f"{statistics.median(inventory_seconds):.2f} s; SPDX + CycloneDX best "
        f"{min(document_seconds):.2f} s, median {statistics.median(document_seconds):.2f} s"
    )


def _unpacked(layer: Path) -> int:
    with gzip.open(layer) as data:
        return sum(len(chunk) for chunk in iter(lambda: data.read(1 << 20), b""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filler-mb", type=int, default=350)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-sbom-") as tmp:
        directory = Path(tmp)
        busybox = directory / "busybox.tar.gz"
        busybox.write_bytes(images.busybox_layer()[1])
        measure("busybox", [busybox], args.repeat)
        measure("generated", generated_image(directory, args.filler_mb), args.repeat)


if __name__ == "__main__":
    main()
