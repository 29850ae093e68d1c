"""Request bodies that break off, against one real server: how granian reports an
invalid chunk size or a client that hangs up mid-body is the point, so these run on a
`dockyard serve` process (behind a proxy such as nginx the proxy answers them first,
which is why test_two_nodes does not run them again)."""

from __future__ import annotations

import json
import os
import socket
import time

import images


def digest_of(data: bytes) -> str:
    return images.sha256_digest(data)


def _raw_request(registry, request: bytes, hang_up: bool = False) -> bytes:
    """Send `request` as is on a new connection; its answer, or (hanging up) nothing."""
    with socket.create_connection(("127.0.0.1", registry.port), timeout=10) as raw:
        raw.sendall(request)
        if hang_up:
            return b""
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
        return answer


def _logged(registry, path: str, requests: int) -> list[dict]:
    """The server's log lines about `path`, once it has logged `requests` requests there
    (each request's line comes once its response has gone: a moment later)."""
    deadline = time.monotonic() + 5
    while True:
        lines = [e for e in registry.request_log() if e.get("path") == path]
        if sum(e["msg"] == "request" for e in lines) >= requests or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_body_that_breaks_off_is_a_client_error_and_the_upload_continues(registry, http):
    """granian reports an invalid chunk size and a client that hangs up mid-body alike;
    either is answered 400 (if anyone listens) and logged in one line, no traceback."""
    data = os.urandom(3000)
    location = http.post("/v2/api/broken/blobs/uploads/").headers["Location"]
    assert http.patch(location, content=data[:1000]).status_code == 202
    head = f"PATCH {location} HTTP/1.1\r\nHost: {registry.host}\r\nConnection: close\r\n"
    answer = _raw_request(
        registry, f"{head}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n".encode()
    )
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"400", answer
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["errors"][0]["code"] == "INVALID_REQUEST"
    _raw_request(
        registry, f"{head}Content-Length: 100000\r\n\r\n".encode() + data[1000:1500], hang_up=True
    )
    lines = _logged(registry, location.partition("?")[0], requests=3)
    assert [e["msg"] for e in lines if e["logger"] == "dockyard.errors"] == [
        "client disconnected"
    ] * 2
    assert all(e["level"] == "info" and "exc" not in e for e in lines), lines
    assert http.get(location).headers["Range"] == "0-999"
    assert http.patch(location, content=data[1000:]).status_code == 202
    assert http.put(f"{location}?digest={digest_of(data)}").status_code == 201
