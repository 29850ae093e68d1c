"""`/v2` uploads refuse bad requests with a 4xx in OCI's error shape, and the upload
session they were sent to stays usable: a client can continue where it was."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from dockyard.app import create_app

Session = Callable[[httpx.AsyncClient], Awaitable[None]]


@pytest.fixture
def app(make_services) -> Starlette:
    return create_app(make_services(auth={"enabled": False}), background=False)


@pytest.fixture
def run(app: Starlette) -> Callable[[Session], None]:
    """Run `session(http)` against an in-process app without authentication."""

    def run_session(session: Session) -> None:
        async def main() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost:5000"
            ) as http:
                await session(http)

        asyncio.run(main())

    return run_session


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def error_code(response: httpx.Response) -> str:
    return response.json()["errors"][0]["code"]


async def start(http: httpx.AsyncClient, first: bytes) -> str:
    """An upload holding `first`; its Location."""
    location = (await http.post("/v2/app/blobs/uploads/")).headers["Location"]
    patched = await http.patch(
        location, content=first, headers={"Content-Range": f"0-{len(first) - 1}"}
    )
    assert patched.status_code == 202, patched.text
    return patched.headers["Location"]


def test_a_content_range_past_any_size_is_refused_and_the_upload_continues(run) -> None:
    data = b"0123456789" * 20

    async def streamed(chunk: bytes) -> AsyncIterator[bytes]:
        yield chunk  # no Content-Length: chunked

    async def session(http: httpx.AsyncClient) -> None:
        location = (await http.post("/v2/app/blobs/uploads/")).headers["Location"]
        for at, body in ((0, data[:100]), (100, data[100:]), (100, streamed(data[100:]))):
            huge = await http.patch(
                location, content=body, headers={"Content-Range": f"{at}-99999999999999999999"}
            )
            assert huge.status_code == 400, huge.text
            assert error_code(huge) == "BLOB_UPLOAD_INVALID"
            if at == 0:
                first = await http.patch(
                    location, content=data[:100], headers={"Content-Range": "0-99"}
                )
                assert first.status_code == 202, first.text
        lying = await http.patch(
            location, content=data[100:], headers={"Content-Length": "99999999999999999999"}
        )
        assert lying.status_code == 400, lying.text
        assert (await http.get(location)).headers["Range"] == "0-99"
        rest = await http.patch(location, content=data[100:], headers={"Content-Range": "100-199"})
        assert rest.status_code == 202, rest.text
        assert (await http.put(f"{location}?digest={digest_of(data)}")).status_code == 201

    run(session)


def test_a_final_put_whose_range_does_not_continue_the_upload_is_416(run) -> None:
    data = b"abcdefghij" * 20

    async def session(http: httpx.AsyncClient) -> None:
        location = await start(http, data[:100])
        url = f"{location}?digest={digest_of(data)}"
        for wrong in ("0-99", "150-249"):
            refused = await http.put(url, content=data[100:], headers={"Content-Range": wrong})
            assert refused.status_code == 416, refused.text
            assert error_code(refused) == "BLOB_UPLOAD_INVALID"
            assert refused.headers["Range"] == "0-99"
        done = await http.put(url, content=data[100:], headers={"Content-Range": "100-199"})
        assert done.status_code == 201, done.text
        assert (await http.get(f"/v2/app/blobs/{digest_of(data)}")).content == data

    run(session)


def test_a_body_that_breaks_off_is_a_400_logged_in_one_line_and_the_upload_continues(
    app: Starlette, run, caplog: pytest.LogCaptureFixture
) -> None:
    """granian reports a client that hangs up mid-body, and a chunked body it cannot
    parse (an invalid chunk size), as `http.disconnect` before the body's end."""
    data = b"0123456789" * 20
    locations: list[str] = []

    async def begin(http: httpx.AsyncClient) -> None:
        locations.append(await start(http, data[:100]))

    run(begin)
    path = locations[0].partition("?")[0]
    sent: list[dict[str, Any]] = []
    incoming = iter(
        [
            {"type": "http.request", "body": data[100:150], "more_body": True},
            {"type": "http.disconnect"},
        ]
    )

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost:5000"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 5000),
    }
    with caplog.at_level(logging.INFO, logger="dockyard"):
        asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert error_code(httpx.Response(400, content=sent[1]["body"])) == "INVALID_REQUEST"
    errors = [r for r in caplog.records if r.name == "dockyard.errors"]
    assert [(r.levelno, r.getMessage(), r.exc_info) for r in errors] == [
        (logging.INFO, "client disconnected", None)
    ]

    async def finish(http: httpx.AsyncClient) -> None:
        assert (await http.get(locations[0])).headers["Range"] == "0-99"
        rest = await http.patch(
            locations[0], content=data[100:], headers={"Content-Range": "100-199"}
        )
        assert rest.status_code == 202, rest.text
        assert (await http.put(f"{locations[0]}?digest={digest_of(data)}")).status_code == 201

    run(finish)
