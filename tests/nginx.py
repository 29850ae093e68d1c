"""A real nginx load balancer for tests: Debian's `nginx` package, run in the foreground
(`daemon off`) with a configuration, prefix and logs of its own in a temporary directory,
on a free loopback port, balancing round-robin over the upstream addresses it is given.

It proxies as a registry deployment's front end must: request bodies streamed to the
node (no buffering, no size limit), responses streamed back, HTTP/1.1 with keep-alive
to the nodes, `Host` kept and `X-Forwarded-For` added. Its access log names the node
that answered each request (`$upstream_addr`), so a test can see where requests went.

Owns only the process and files it makes; stopped by its own process id. Anything
missing raises: a test that needs nginx and cannot have it fails, never skips.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

# One line per request, tab-separated: the node(s) tried (", " between attempts), the
# status each answered, the client's method and URI, and the status the client got.
_LOG_FORMAT = "$upstream_addr\\t$upstream_status\\t$request_method\\t$request_uri\\t$status"

_CONFIG = """\
{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;

events {{
    worker_connections 512;
}}

http {{
    access_log off;
    client_body_temp_path {root}/client_body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    log_format upstreams "{log_format}";

{site}
}}
"""

# What goes inside `http`: the nodes and the server that balances over them.
_SITE = """\
{bucket}    upstream dockyard {{
{servers}
        keepalive 16;
    }}

    server {{
        listen 127.0.0.1:{port};
        access_log {root}/access.log upstreams;

        # Blob uploads: any size, streamed to the node as they arrive.
        client_max_body_size 0;
        proxy_request_buffering off;
        # Blob downloads: streamed to the client, never spooled to a temporary file.
        # Unbuffered, nginx moves at most proxy_buffer_size per read from the node (one
        # page by default: 4 KiB a system call, which bounds a pull far below the node);
        # the other two only satisfy nginx's checks (unbuffered, it allocates none).
        proxy_buffering off;
        proxy_buffer_size 256k;
        proxy_buffers 4 256k;
        proxy_busy_buffers_size 256k;

{offload}
        location / {{
            proxy_pass http://dockyard;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # A node that refuses connections or resets one before answering: the request
            # goes to the next node when nginx may resend it (an idempotent method, or
            # any method not yet sent), and the node rests for fail_timeout.
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
            proxy_read_timeout 120s;
            proxy_send_timeout 120s;
        }}
    }}
"""


# With `offload` (the nodes' `[storage] nginx_offload = "/_blob/"`): blob bytes fetched
# from the bucket by nginx itself, as docs/deploy.md configures it.
_OFFLOAD_UPSTREAM = """\
    upstream bucket {{
        server {bucket};
        keepalive 16;
    }}
"""
_OFFLOAD = """\
        location ~ ^/_blob/(?<blob_digest>[^/]+)(?<blob_key>/.*)$ {{
            internal;
            proxy_pass http://bucket$blob_key$is_args$args;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host {bucket};
            proxy_set_header Authorization "";
            proxy_set_header Cookie "";
            proxy_hide_header ETag;
            add_header Docker-Content-Digest $blob_digest always;
            add_header ETag "\\"$blob_digest\\"" always;
            proxy_intercept_errors on;
            error_page 403 404 500 502 503 504 =503 /_blob_unavailable;
        }}
        location = /_blob_unavailable {{
            internal;
            default_type application/json;
            return 503 '{{"errors":[{{"code":"UNAVAILABLE","message":"storage unavailable"}}]}}';
        }}
"""


class NginxUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class ProxiedRequest:
    """One line of the access log: which node(s) nginx tried ("-" when it answered by
    itself, as to a TLS handshake on its plain HTTP port), and what the client got."""

    upstreams: tuple[str, ...]
    upstream_statuses: tuple[str, ...]
    method: str
    uri: str
    status: int


def _nginx() -> str:
    # Debian installs it in /usr/sbin, which a non-root PATH may lack.
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        raise NginxUnavailable(
            "nginx not found: install the Debian package `nginx` (make install does)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    """One nginx load balancer. Its `port` is chosen at construction, so the nodes can be
    told the address their clients use before any of them starts; `start(upstreams)`
    writes the configuration and runs nginx, `stop()` ends it."""

    def __init__(
        self, max_fails: int = 1, fail_timeout: int = 10, offload: str | None = None
    ) -> None:
        """A node is skipped for `fail_timeout` seconds after `max_fails` failures (nginx
        then tries it again with one request). `offload`: the bucket's "host:port", to
        serve blob bytes from it when a node says so (`[storage] nginx_offload`)."""
        self.upstreams: list[str] = []
        self.max_fails = max_fails
        self.fail_timeout = fail_timeout
        self.offload = offload
        self.port = _free_port()
        self.root: Path | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _config(self, root: Path, site: str | None) -> str:
        if site is None:
            limits = f"max_fails={self.max_fails} fail_timeout={self.fail_timeout}s"
            servers = "\n".join(f"        server {address} {limits};" for address in self.upstreams)
            bucket = offload = ""
            if self.offload is not None:
                bucket = _OFFLOAD_UPSTREAM.format(bucket=self.offload)
                offload = _OFFLOAD.format(bucket=self.offload)
            site = _SITE.format(
                root=root, port=self.port, servers=servers, bucket=bucket, offload=offload
            )
        # Under root nginx hands requests to an unprivileged worker, which could not write
        # its temporary files in a directory only root may enter: keep root's.
        user = "user root root;" if os.geteuid() == 0 else ""
        return _CONFIG.format(user=user, root=root, site=site, log_format=_LOG_FORMAT)

    def start(self, upstreams: list[str], site: str | None = None) -> Nginx:
        """Run nginx in front of `upstreams` ("host:port" each), round-robin; or, given
        `site` (what an operator puts in `conf.d/`, inside `http`), with that instead,
        which must listen on `port` and balance over `upstreams` itself."""
        nginx = _nginx()
        self.upstreams = list(upstreams)
        self.root = Path(tempfile.mkdtemp(prefix="dockyard-nginx-"))
        config = self.root / "nginx.conf"
        config.write_text(self._config(self.root, site))
        log = (self.root / "stderr.log").open("wb")
        self.proc = subprocess.Popen(
            [nginx, "-p", str(self.root), "-c", str(config), "-e", "stderr", "-g", "daemon off;"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        log = self.log_tail()
        self.stop()
        raise NginxUnavailable(f"nginx did not start listening on {self.host}:\n{log}")

    def log_tail(self, lines: int = 30) -> str:
        if self.root is None:
            return ""
        out = []
        for name in ("stderr.log", "error.log"):
            path = self.root / name
            if path.exists():
                out += path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(out)

    def requests(self) -> list[ProxiedRequest]:
        """Every request proxied so far, oldest first (nginx writes a line as the response
        ends)."""
        assert self.root is not None
        path = self.root / "access.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(errors="replace").splitlines():
            upstreams, statuses, method, uri, status = line.split("\t")
            out.append(
                ProxiedRequest(
                    tuple(upstreams.split(", ")),
                    tuple(statuses.split(", ")),
                    method,
                    uri,
                    int(status),
                )
            )
        return out

    def stop(self) -> None:
        """Fast shutdown (SIGTERM to the master, which ends its worker), SIGKILL after a
        while; the files go too."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(STOP_TIMEOUT)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
