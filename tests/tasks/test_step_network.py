"""What RUN steps reach, with the real buildah in the runner: this registry and nothing
else by default (`[tasks] step_network = "registry"`), nothing at all with `none`, the
server's whole network with `host`. The registry is a stand-in HTTP server on a loopback
port (the login server's port), and a second loopback server stands for everything else
the server itself could reach."""

from __future__ import annotations

import http.server
import shutil
import threading
from collections.abc import Iterator

import pytest
from test_runner import BUSYBOX, SCRATCH, archive, execute, queue

from dockyard.services import Services


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


def build(make_services, network: str, registry_port: int, url: str) -> tuple[str, str]:
    assert shutil.which("buildah") and shutil.which("unshare"), "run make install"
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": f"localhost:{registry_port}"},
        tasks={"step_network": network},
    )
    dockerfile = SCRATCH + f'RUN ["/bin/busybox", "wget", "-q", "-O-", "{url}"]\n'
    context = archive(dockerfile, {"busybox": BUSYBOX.read_bytes()})
    registry, run_id = queue(services, context, login_server=f"localhost:{registry_port}")
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
