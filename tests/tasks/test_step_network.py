"""What RUN steps reach, with the real buildah in the runner: this registry and nothing
else by default (`[tasks] step_network = "registry"`), nothing at all with `none`, the
server's whole network with `host`. The registry is a stand-in HTTP server on a loopback
port (the login server's port), and a second loopback server stands for everything else
the server itself could reach."""

from __future__ import annotations

import asyncio
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_runner import BUSYBOX, SCRATCH, archive, execute, queue

from dockyard.services import Services
from dockyard.tasks.registry_network import step_network


class _Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"answer from {self.server.server_address[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    """(the registry's port, another port), both answering HTTP on 127.0.0.1."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answer) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield servers[0].server_address[1], servers[1].server_address[1]
    for server in servers:
        server.shutdown()
        server.server_close()


def build(
    make_services,
    network: str,
    registry_port: int,
    url: str,
    task_name: str | None = None,
    host_network_tasks: tuple[str, ...] = (),
) -> tuple[str, str]:
    assert shutil.which("buildah") and shutil.which("unshare"), "run make install"
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": f"localhost:{registry_port}"},
        tasks={"step_network": network, "host_network_tasks": list(host_network_tasks)},
    )
    dockerfile = SCRATCH + f'RUN ["/bin/busybox", "wget", "-q", "-O-", "{url}"]\n'
    context = archive(dockerfile, {"busybox": BUSYBOX.read_bytes()})
    registry, run_id = queue(
        services, context, login_server=f"localhost:{registry_port}", task_name=task_name
    )
    run, log = execute(services, registry, run_id)
    return run.status, log


def test_a_run_step_reaches_the_registry(make_services, listeners) -> None:
    registry, _ = listeners
    status, log = build(make_services, "registry", registry, f"http://localhost:{registry}/v2/")
    assert status == "Succeeded", log
    assert f"answer from {registry}" in log


def test_a_run_step_reaches_the_registry_by_address(make_services, listeners) -> None:
    registry, _ = listeners
    status, log = build(make_services, "registry", registry, f"http://127.0.0.1:{registry}/v2/")
    assert status == "Succeeded", log


def test_a_run_step_reaches_no_other_port(make_services, listeners) -> None:
    registry, other = listeners
    status, log = build(make_services, "registry", registry, f"http://127.0.0.1:{other}/")
    assert status == "Failed", log
    assert f"answer from {other}" not in log


def test_no_network_reaches_not_even_the_registry(make_services, listeners) -> None:
    registry, _ = listeners
    status, log = build(make_services, "none", registry, f"http://127.0.0.1:{registry}/v2/")
    assert status == "Failed", log


def test_the_host_network_is_an_explicit_opt_out(make_services, listeners) -> None:
    registry, other = listeners
    status, log = build(make_services, "host", registry, f"http://127.0.0.1:{other}/")
    assert status == "Succeeded", log
    assert f"answer from {other}" in log


def test_a_task_the_administrator_names_gets_the_host_network(make_services, listeners) -> None:
    registry, other = listeners
    url = f"http://127.0.0.1:{other}/"
    status, log = build(make_services, "registry", registry, url, "trusted", ("dockyard/trusted",))
    assert status == "Succeeded", log
    status, log = build(make_services, "registry", registry, url, "other", ("dockyard/trusted",))
    assert status == "Failed", log


def test_a_deep_data_directory_gets_a_short_socket_path(listeners, tmp_path: Path) -> None:
    """A unix socket's path has at most 107 bytes: the relay's moves to a temporary
    directory of its own, which goes with the run."""
    registry, _ = listeners
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    network = step_network("registry", deep, f"localhost:{registry}", False)
    socket_path = Path(network.prefix[network.prefix.index("dockyard.tasks.registry_network") + 1])
    assert len(str(socket_path)) < 100 and network.hosts == ("localhost:127.0.0.1",)

    async def fetch() -> bytes:
        async with network.relay:
            reader, writer = await asyncio.open_unix_connection(str(socket_path))
            writer.write(b"GET /v2/ HTTP/1.0\r\n\r\n")
            answer = await reader.read()
            writer.close()
            return answer

    assert f"answer from {registry}".encode() in asyncio.run(fetch())
    assert not socket_path.parent.exists()
