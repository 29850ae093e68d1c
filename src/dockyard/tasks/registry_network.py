"""The registry-only network of a run's steps. A step (`buildah build`, `buildah run`)
runs in a network namespace of its own whose only device is loopback; inside it, this
module's `main` (started by `unshare --net`) listens on the registry's port on
127.0.0.1 and ::1 and hands each connection, through a unix socket in the run's own
directory (a file: the namespace does not hide it), to `RegistryRelay`, which runs in the
server's namespace and connects it to the registry. Any other address or port inside the
namespace reaches nothing: no route leaves it, and there is nothing else to forward to.

The inner side is stdlib only and imports nothing of Dockyard's, since it runs with
the step's stripped environment; it ends with the step's exit status, and dies with the
step's process group when the runner kills it."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_CHUNK = 64 * 1024
_MAX_SOCKET_PATH = 100


def registry_address(login_server: str, tls: bool) -> tuple[str, int]:
    """The host and port a login server names (443 with TLS, 80 without, when none)."""
    parts = urlsplit(f"//{login_server}")
    return parts.hostname or login_server, parts.port or (443 if tls else 80)


def step_prefix(socket_path: Path, port: int) -> list[str]:
    """The command line a step runs behind: a new network namespace, this module in it."""
    return [
        "unshare",
        "--net",
        "--",
        sys.executable,
        "-I",
        "-m",
        "dockyard.tasks.registry_network",
        str(socket_path),
        str(port),
        "--",
    ]


@dataclass(frozen=True)
class StepNetwork:
    """What a run's steps run behind (`Workspace.network`, `Workspace.hosts`) and what
    must serve while they run (`relay`)."""

    prefix: tuple[str, ...]
    hosts: tuple[str, ...]
    relay: contextlib.AbstractAsyncContextManager[None]


def step_network(mode: str, root: Path, login_server: str | None, tls: bool) -> StepNetwork:
    """`[tasks] step_network` for a run in `root`: `registry` (the default), `none`, or
    `host`. Without a registry (it is gone) a step gets no network at all."""
    if mode == "host":
        return StepNetwork((), (), contextlib.nullcontext())
    if mode == "none" or login_server is None:
        return StepNetwork(("unshare", "--net", "--"), (), contextlib.nullcontext())
    host, port = registry_address(login_server, tls)
    socket_path = root / "registry.sock"
    if len(str(socket_path).encode()) > _MAX_SOCKET_PATH:
        # A unix socket's path has at most 107 bytes: a deep data directory gets a
        # directory of the server's temporary one instead (root's only, 0700).
        socket_path = Path(tempfile.mkdtemp(prefix="dockyard-run-")) / "registry.sock"
    named = not _is_address(host)
    return StepNetwork(
        tuple(step_prefix(socket_path, port)),
        (f"{host}:127.0.0.1",) if named else (),
        registry_relay(socket_path, host, port),
    )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@contextlib.asynccontextmanager
async def registry_relay(socket_path: Path, host: str, port: int) -> AsyncIterator[None]:
    """Serves `socket_path` while the run's steps run: each connection is joined to the
    registry at `host`:`port`, as the server's own tools reach it."""

    async def join(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            _pipe(reader, upstream_writer),
            _pipe(upstream_reader, writer),
            return_exceptions=True,
        )

    socket_path.parent.mkdir(parents=True, exist_ok=True)
    server = await asyncio.start_unix_server(join, path=str(socket_path))
    try:
        yield
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 1)
        socket_path.unlink(missing_ok=True)
        if socket_path.parent.name.startswith("dockyard-run-"):
            socket_path.parent.rmdir()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    finally:
        if reader.at_eof():
            with contextlib.suppress(OSError):
                await writer.drain()
        writer.close()


def _loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2 on the server."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(control, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))


def _listeners(port: int) -> list[socket.socket]:
    listeners = [socket.create_server(("127.0.0.1", port), backlog=64)]
    with contextlib.suppress(OSError):  # a kernel without IPv6
        listeners.append(socket.create_server(("::1", port), family=socket.AF_INET6, backlog=64))
    return listeners


def _serve(listener: socket.socket, socket_path: str) -> None:
    while True:
        inner, _ = listener.accept()
        outer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            outer.connect(socket_path)
        except OSError:
            inner.close()
            outer.close()
            continue
        for source, target in ((inner, outer), (outer, inner)):
            threading.Thread(target=_copy, args=(source, target), daemon=True).start()


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(_CHUNK):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_RDWR)


def main(argv: list[str]) -> int:
    """`SOCKET PORT -- COMMAND...`: in the step's fresh network namespace."""
    socket_path, port, separator, *command = argv
    if separator != "--" or not command:
        print("usage: registry_network SOCKET PORT -- COMMAND...", file=sys.stderr)
        return 2
    _loopback_up()
    for listener in _listeners(int(port)):
        threading.Thread(target=_serve, args=(listener, socket_path), daemon=True).start()
    try:
        return subprocess.call(command)
    except FileNotFoundError:
        print(f"{command[0]}: not found", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
