"""An error nobody handled reaches the client as a plain 500 error body, never a
traceback: `RequestLog`, the outermost layer (Starlette's own error layer is left out),
answers it on the manifest reads' short path and through the router alike."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from dockyard.app import create_app

DIGEST = "sha256:" + "a" * 64


def test_an_unhandled_error_is_a_plain_500(
    make_services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    services = make_services(auth={"enabled": False})
    app = create_app(services, background=False)

    async def broken_manifest(*args: object) -> None:
        raise RuntimeError("secret detail of a manifest bug")

    def broken_locate(*args: object) -> None:
        raise RuntimeError("secret detail of a blob bug")

    monkeypatch.setattr(services.pull_through, "manifest", broken_manifest)
    monkeypatch.setattr(services.blobs, "locate", broken_locate)

    async def session() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            for path in ("/v2/app/manifests/v1", f"/v2/app/blobs/{DIGEST}"):
                answer = await http.get(path)
                assert answer.status_code == 500
                error = answer.json()["errors"][0]
                assert (error["code"], error["message"]) == ("UNKNOWN", "internal server error")
                assert "secret detail" not in answer.text
                assert "Traceback" not in answer.text

    with caplog.at_level(logging.ERROR, logger="dockyard.errors"):
        asyncio.run(session())
    assert [r.message for r in caplog.records].count("unhandled error") == 2
