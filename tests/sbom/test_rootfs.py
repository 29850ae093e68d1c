"""The merged filesystem of layers read as streams: a later layer's file replaces an
earlier one's, `.wh.` whiteouts delete across layers, opaque directories hide what the
layers below put in them (not what their own layer puts, wherever the marker stands),
a file in place of a directory takes what was below it; gzip, zstd and plain tar."""

from __future__ import annotations

import io

from image_contents import dist_info, gzip_layer, tar_layer, zstd_layer

from dockyard.sbom.readers import READERS
from dockyard.sbom.rootfs import Rootfs

SITE = "usr/local/lib/python3.11/site-packages"


def python_packages(*layers: bytes) -> set[tuple[str, str]]:
    rootfs = Rootfs(READERS)
    for layer in layers:
        rootfs.apply(io.BytesIO(layer))
    return {(i.name, i.version) for found in rootfs.found() for i in found.value}  # type: ignore[attr-defined]


def test_a_whiteout_deletes_a_package_of_a_lower_layer() -> None:
    base = gzip_layer(dict([dist_info("requests", "2.19.1"), dist_info("urllib3", "1.24.1")]))
    upper = gzip_layer({f"{SITE}/.wh.requests-2.19.1.dist-info": b""})
    assert python_packages(base, upper) == {("urllib3", "1.24.1")}
    assert python_packages(base) == {("requests", "2.19.1"), ("urllib3", "1.24.1")}


def test_a_later_layer_replaces_a_file_and_an_upgrade_replaces_a_package() -> None:
    base = gzip_layer(dict([dist_info("jinja2", "2.10")]))
    upgrade = gzip_layer(
        {f"{SITE}/.wh.jinja2-2.10.dist-info": b"", **dict([dist_info("jinja2", "3.1.4")])}
    )
    assert python_packages(base, upgrade) == {("jinja2", "3.1.4")}


def test_an_opaque_directory_hides_lower_layers_only_wherever_its_marker_stands() -> None:
    base = gzip_layer(dict([dist_info("requests", "2.19.1"), dist_info("pyyaml", "5.1")]))
    # The marker after the layer's own entry: that entry stays.
    upper = zstd_layer({**dict([dist_info("urllib3", "1.26.0")]), f"{SITE}/.wh..wh..opq": b""})
    assert python_packages(base, upper) == {("urllib3", "1.26.0")}


def test_a_file_in_place_of_a_directory_takes_what_was_below_it() -> None:
    base = tar_layer(dict([dist_info("requests", "2.19.1")]))
    upper = tar_layer({SITE: b"not a directory any more"})
    assert python_packages(base, upper) == set()


def test_a_whiteout_of_a_parent_directory_deletes_everything_below() -> None:
    base = gzip_layer(dict([dist_info("requests", "2.19.1")]))
    upper = gzip_layer({"usr/local/lib/.wh.python3.11": b""})
    later = gzip_layer(dict([dist_info("pyyaml", "6.0")]))
    assert python_packages(base, upper, later) == {("pyyaml", "6.0")}
