"""What answers as a registry to a test's HTTP requests: `RegistryEndpoint`, the raw
HTTP helpers every kind shares (one `dockyard serve` process, several behind a load
balancer: tests/integration/conftest.py), and `AppEndpoint`, the app in the test's own
process, for the API tests where no server process is the point."""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from typing import Any

import httpx
import images

from dockyard.app import create_app
from dockyard.services import Services

HTTP_TIMEOUT = 10.0


class RegistryEndpoint:
    """Raw HTTP helpers for whatever answers as a registry at `url`: one server, or
    several behind a load balancer. Subclasses give `url` and `verify`."""

    url: str
    verify: ssl.SSLContext | bool = True

    def stderr_tail(self, lines: int = 40) -> str:
        """The end of what the server(s) wrote, for the report of a failed test."""
        raise NotImplementedError

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT, verify=self.verify)

    def push_blob(self, repo: str, data: bytes) -> str:
        """Upload one blob (POST, then PUT with the bytes); returns its digest."""
        digest = images.sha256_digest(data)
        with self.client() as http:
            start = http.post(f"/v2/{repo}/blobs/uploads/")
            assert start.status_code == 202, (start.status_code, start.text)
            location = start.headers["Location"]
            sep = "&" if "?" in location else "?"
            done = http.put(
                f"{location}{sep}digest={digest}",
                content=data,
                headers={"Content-Type": "application/octet-stream"},
            )
            assert done.status_code == 201, (done.status_code, done.text)
            assert done.headers.get("Docker-Content-Digest") == digest
        return digest

    def put_manifest(
        self, repo: str, reference: str, manifest: bytes, media_type: str
    ) -> httpx.Response:
        with self.client() as http:
            return http.put(
                f"/v2/{repo}/manifests/{reference}",
                content=manifest,
                headers={"Content-Type": media_type},
            )

    def push_small_image(
        self, repo: str, tag: str = "v1", headers: dict[str, str] | None = None
    ) -> tuple[bytes, bytes]:
        """Push a small image (a config and a random 64-byte layer, each in one POST)
        with `headers` (credentials) on every request; returns (manifest, layer)."""
        config, layer = b'{"os":"linux"}', os.urandom(64)
        with self.client() as http:
            http.headers.update(headers or {})
            for blob in (config, layer):
                digest = images.sha256_digest(blob)
                r = http.post(f"/v2/{repo}/blobs/uploads/?digest={digest}", content=blob)
                assert r.status_code == 201, r.text
            manifest = images.json_bytes(
                {
                    "schemaVersion": 2,
                    "mediaType": images.OCI_MANIFEST,
                    "config": images.descriptor(images.OCI_CONFIG, config),
                    "layers": [images.descriptor(images.OCI_LAYER_GZIP, layer)],
                }
            )
            r = http.put(
                f"/v2/{repo}/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": images.OCI_MANIFEST},
            )
            assert r.status_code == 201, r.text
        return manifest, layer

    def push_image(self, repo: str, image: images.Image, reference: str | None = None) -> str:
        """Push an image's blobs and manifest (by tag, or by digest); returns its digest."""
        for data in image.blobs.values():
            self.push_blob(repo, data)
        response = self.put_manifest(
            repo, reference or image.digest, image.manifest, image.media_type
        )
        assert response.status_code == 201, (response.status_code, response.text)
        assert response.headers.get("Docker-Content-Digest") == image.digest
        return image.digest


class _AppTransport(httpx.BaseTransport):
    """httpx's ASGI transport behind a synchronous client: each request runs on the
    endpoint's one event loop (so the app's worker threads, and the database connections
    they hold, are reused as in a server process)."""

    def __init__(self, app: Any, address: str, loop: asyncio.AbstractEventLoop) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=(address, 50000))
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> tuple[int, httpx.Headers, bytes]:
            forwarded = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            response = await self._asgi.handle_async_request(forwarded)
            return response.status_code, response.headers, await response.aread()

        status, headers, content = asyncio.run_coroutine_threadsafe(call(), self._loop).result()
        return httpx.Response(status, headers=headers, content=content, request=request)


class AppEndpoint(RegistryEndpoint):
    """The ASGI app over `services`, in this process: requests reach it without a socket,
    from `address`, as `dockyard serve` would get them on `host`. Its background work
    does not run. `close()` stops its event loop and closes the services."""

    def __init__(
        self, services: Services, host: str = "localhost:5000", address: str = "127.0.0.1"
    ) -> None:
        self.services = services
        self.host = host
        self.url = f"http://{host}"
        self._app = create_app(services, background=False)
        self._address = address
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def stderr_tail(self, lines: int = 40) -> str:
        return ""  # an exception in the app reaches the test itself

    def client(self) -> httpx.Client:
        transport = _AppTransport(self._app, self._address, self._loop)
        return httpx.Client(base_url=self.url, transport=transport, timeout=HTTP_TIMEOUT)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
        self.services.close()
