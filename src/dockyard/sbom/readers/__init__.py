"""The files that tell what is installed in an image, one module per kind: the
distribution (`distro`), dpkg, apk, Python, npm, Java archives, rpm's SQLite database
and Go binaries. `READERS` is the order a file is offered to them in: the first that
wants it reads it (Go's last, as it takes any executable)."""

from dockyard.sbom.readers import apk, distro, dpkg, golang, java, npm, python, rpm
from dockyard.sbom.rootfs import FileReader

READERS: tuple[FileReader, ...] = (
    FileReader("distro", distro.wants, distro.read),
    FileReader("dpkg", dpkg.wants, dpkg.read),
    FileReader("apk", apk.wants, apk.read),
    FileReader("python", python.wants, python.read),
    FileReader("npm", npm.wants, npm.read),
    FileReader("java", java.wants, java.read),
    FileReader("rpm", rpm.wants, rpm.read),
    FileReader("go", golang.wants, golang.read),
)
