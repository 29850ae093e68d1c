"""RUN steps of another architecture, through qemu-user-static in a binfmt_misc of the
build's own. The machine's binfmt_misc is left alone (it may not even be mounted): a
new user namespace (ids 0-65535 mapped to themselves, so images' files keep their
owners) gets a new mount namespace and a binfmt_misc instance of its own (Linux 6.7 and
later), where this module's `main` registers the emulator of the build's architecture
with the F flag (the kernel opens it at registration, so the build's root need not
contain it), then becomes the step. Nothing outside the build sees the registration.

`main` is stdlib only, as it runs with the step's stripped environment."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

# Debian's qemu-user-static: the emulators and the binfmt.d lines naming their magic.
_EMULATORS = Path("/usr/bin")
_BINFMT_D = Path("/usr/lib/binfmt.d")
_QEMU_NAMES = {
    "arm64": "aarch64",
    "arm": "arm",
    "386": "i386",
    "amd64": "x86_64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}
_CLONE_NEWNS, _CLONE_NEWUSER = 0x00020000, 0x10000000
_MS_REC, _MS_PRIVATE = 0x4000, 0x40000
_IDS = 65536
_BINFMT = "/proc/sys/fs/binfmt_misc"


class NoEmulator(Exception):
    """No qemu-user-static emulator for the architecture on this server."""


def registration(architecture: str) -> str:
    """The binfmt_misc `register` line for `architecture`: Debian's magic and mask, this
    emulator binary, flag F."""
    name = _QEMU_NAMES.get(architecture)
    emulator = _EMULATORS / f"qemu-{name}-static"
    conf = _BINFMT_D / f"qemu-{name}.conf"
    if name is None or not emulator.is_file() or not conf.is_file():
        raise NoEmulator(architecture)
    fields = conf.read_text().strip().split(":")
    # :name:type:offset:magic:mask:interpreter:flags
    fields[6], fields[7] = str(emulator), "F"
    return ":".join(fields)


def step_prefix(architecture: str) -> list[str]:
    """The command line a step of `architecture` runs behind (`NoEmulator` if none)."""
    return [
        sys.executable,
        "-I",
        "-m",
        "dockyard.tasks.emulation",
        registration(architecture),
        "--",
    ]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def _enter(line: str, ready: int, mapped: int) -> None:
    """In the child: new user and mount namespaces, wait for the id maps, then a private
    binfmt_misc with `line` registered."""
    libc = _libc()
    _check(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare")
    os.write(ready, b"1")
    os.close(ready)
    if os.read(mapped, 1) != b"1":
        raise OSError("the id maps were not written")
    os.close(mapped)
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    _check(libc.mount(b"binfmt_misc", _BINFMT.encode(), b"binfmt_misc", 0, None), "binfmt_misc")
    with open(f"{_BINFMT}/register", "w") as register:
        register.write(line)


def main(argv: list[str]) -> int:
    """`REGISTRATION -- COMMAND...`"""
    line, separator, *command = argv
    if separator != "--" or not command:
        print("usage: emulation REGISTRATION -- COMMAND...", file=sys.stderr)
        return 2
    ready_read, ready_write = os.pipe()
    mapped_read, mapped_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(ready_read)
        os.close(mapped_write)
        try:
            _enter(line, ready_write, mapped_read)
            os.execvp(command[0], command)
        except OSError as exc:
            print(
                f"emulating another architecture needs a binfmt_misc of the build's own "
                f"(Linux 6.7 or later, as root): {exc}",
                file=sys.stderr,
            )
        os._exit(125)
    os.close(ready_write)
    os.close(mapped_read)
    if os.read(ready_read, 1) == b"1":
        for name in ("uid_map", "gid_map"):
            Path(f"/proc/{child}/{name}").write_text(f"0 0 {_IDS}\n")
        os.write(mapped_write, b"1")
    os.close(mapped_write)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
