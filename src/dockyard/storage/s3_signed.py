"""GETs and HEADs of S3 objects as pre-signed requests on a urllib3 pool of their own.

Every blob pull makes one or two of these calls, and botocore spends about 2 ms of CPU
on each (event hooks, endpoint rules, response parsing), several times what the bytes
of a 16 MiB layer cost to proxy. A pre-signed URL is signed offline by the same client
(same credentials, endpoint and addressing), and urllib3 is what botocore sends with:
the calls cost a fraction of that (docs/performance.md). Writes, listings and deletes
stay with botocore, whose retries and checksums they need.

The pool follows the client's configuration: its connect and read time-outs, its tries
(`max_attempts`, the first included) on a refused or dropped connection and on a server
error, its pool size, and the CA bundle botocore would use (`AWS_CA_BUNDLE`, else the
system's). Answers map to the store's errors: 404 to `FileNotFoundError`, 416 to
`RangeNotSatisfiable`, a store that cannot answer to `StorageUnavailable`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from urllib3.exceptions import HTTPError

from dockyard.common.errors import StorageUnavailable

# A pre-signed URL is used at once; the margin covers clocks that drift apart.
_SIGNED_FOR_SECONDS = 300
_SERVER_ERRORS = frozenset({500, 502, 503, 504})
_META = "x-amz-meta-"


class RangeNotSatisfiable(OSError):
    """The object has no byte at the range's start (S3's 416 `InvalidRange`)."""


@contextmanager
def translated() -> Iterator[None]:
    """urllib3's failures to reach or read the store, as the store being unavailable."""
    try:
        yield
    except HTTPError as error:
        raise StorageUnavailable() from error


class SignedReads:
    def __init__(self, client: Any) -> None:
        config = client.meta.config
        attempts = (config.retries or {}).get("total_max_attempts", 1)
        self._client = client
        self._pool = urllib3.PoolManager(
            maxsize=config.max_pool_connections,
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            retries=urllib3.Retry(
                total=attempts - 1,
                redirect=0,
                status_forcelist=_SERVER_ERRORS,
                allowed_methods=frozenset({"GET", "HEAD"}),
                backoff_factor=0.05,
                raise_on_status=False,
            ),
            ca_certs=os.environ.get("AWS_CA_BUNDLE"),
        )

    def _call(self, method: str, bucket: str, key: str, headers: dict[str, str] | None) -> Any:
        operation = "get_object" if method == "GET" else "head_object"
        url = self._client.generate_presigned_url(
            operation, Params={"Bucket": bucket, "Key": key}, ExpiresIn=_SIGNED_FOR_SECONDS
        )
        with translated():
            response = self._pool.request(
                method, url, headers=headers, preload_content=False, decode_content=False
            )
        if response.status < 300:
            return response
        detail = response.read(1024).decode(errors="replace")
        response.release_conn()
        if response.status == 404:
            raise FileNotFoundError(key)
        if response.status == 416:
            raise RangeNotSatisfiable(key)
        if response.status in _SERVER_ERRORS:
            raise StorageUnavailable()
        raise OSError(f"S3 {method} {key}: {response.status} {detail}")

    def get(self, bucket: str, key: str, byte_range: str | None = None) -> Any:
        """The object's body (a urllib3 response, read in the caller's chunks; read to
        its end or closed); `byte_range` as the `Range` header's value."""
        return self._call("GET", bucket, key, {"Range": byte_range} if byte_range else None)

    def head(self, bucket: str, key: str) -> dict[str, Any] | None:
        """The object's size and user metadata, as botocore's `head_object` names them
        (`ContentLength`, `Metadata`); None if there is no such object."""
        try:
            response = self._call("HEAD", bucket, key, None)
        except FileNotFoundError:
            return None
        response.release_conn()
        headers = response.headers
        metadata = {
            name[len(_META) :].lower(): value
            for name, value in headers.items()
            if name.lower().startswith(_META)
        }
        return {"ContentLength": int(headers.get("Content-Length", 0)), "Metadata": metadata}
