"""The ARM side of quick runs and the Blob-like URLs, in process (no build runs: nothing
executes queued runs here): the upload URL and its protocol, `scheduleRun`'s answers
and refusals, runs shown, listed, canceled, and the log URL before and after a run."""

from __future__ import annotations

import asyncio
import base64
import io
import tarfile
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from dockyard.app import create_app
from dockyard.metadata import migrate
from dockyard.metadata.engine import make_engine
from dockyard.metadata.tasks import RunWrites
from dockyard.services import Services
from dockyard.tasks.runs import parse_filter

REGISTRY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers/"
    "Microsoft.ContainerRegistry/registries/dockyard"
)
VERSION = {"api-version": "2025-03-01-preview"}

Session = Callable[[httpx.AsyncClient], Awaitable[Any]]


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        tasks={"max_source_bytes": 4096},
    )


def session(services: Services, steps: Session) -> Any:
    app = create_app(services, background=False)

    async def run() -> Any:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            return await steps(http)

    return asyncio.run(run())


def context_archive() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b"FROM scratch\n"
        member = tarfile.TarInfo("Dockerfile")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return buffer.getvalue()


def build_body(source: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "DockerBuildRequest",
        "imageNames": ["app:{{.Run.ID}}"],
        "isPushEnabled": True,
        "sourceLocation": source,
        "dockerFilePath": "Dockerfile",
        "platform": {"os": "linux", "architecture": "amd64"},
        **extra,
    }


async def uploaded(http: httpx.AsyncClient) -> str:
    target = (await http.post(f"{REGISTRY}/listBuildSourceUploadUrl", params=VERSION)).json()
    assert target["uploadUrl"].startswith("http://localhost:5000/_tasks/r")
    put = await http.put(
        target["uploadUrl"], content=context_archive(), headers={"x-ms-blob-type": "BlockBlob"}
    )
    assert put.status_code == 201 and put.headers["etag"]
    return target["relativePath"]


def test_schedule_run_answers_200_with_a_queued_run(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> list[httpx.Response]:
        source = await uploaded(http)
        first = await http.post(f"{REGISTRY}/scheduleRun", params=VERSION, json=build_body(source))
        source = await uploaded(http)
        second = await http.post(f"{REGISTRY}/scheduleRun", params=VERSION, json=build_body(source))
        shown = await http.get(f"{REGISTRY}/runs/ca2", params=VERSION)
        listed = await http.get(f"{REGISTRY}/runs", params=VERSION | {"$top": "1"})
        queued = await http.get(
            f"{REGISTRY}/runs", params=VERSION | {"$filter": "status eq 'Queued'"}
        )
        return [first, second, shown, listed, queued]

    first, second, shown, listed, queued = session(services, steps)
    assert first.status_code == 200, first.text
    run = first.json()
    assert run["name"] == "ca1" and run["id"] == f"{REGISTRY}/runs/ca1"
    assert run["type"] == "Microsoft.ContainerRegistry/registries/runs"
    properties = run["properties"]
    assert (properties["runId"], properties["status"], properties["runType"]) == (
        "ca1",
        "Queued",
        "QuickBuild",
    )
    assert properties["timeout"] == 600 and properties["outputImages"] == []
    assert second.json()["name"] == "ca2" and shown.json()["name"] == "ca2"
    assert [r["name"] for r in listed.json()["value"]] == ["ca2"]
    assert "nextLink" not in listed.json()
    assert [r["name"] for r in queued.json()["value"]] == ["ca2", "ca1"]


BAD_YAML = base64.b64encode(b"steps: [").decode()


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"type": "Nope"}, "InvalidParameter"),
        ({"type": "FileTaskRunRequest"}, "InvalidParameter"),  # no acb.yaml in the context
        ({"type": "EncodedTaskRunRequest", "encodedTaskContent": BAD_YAML}, "InvalidParameter"),
        ({"platform": {"os": "windows", "architecture": "amd64"}}, "NotSupported"),
        ({"imageNames": ["Upper:case"]}, "InvalidParameter"),
        ({"imageNames": ["app:{{.Run.Nope}}"]}, "InvalidParameter"),
        ({"timeout": 10}, "InvalidParameter"),
        ({"dockerFilePath": "../outside"}, "InvalidParameter"),
        ({"sourceLocation": "https://example.com/app.tar.gz"}, "NotSupported"),
        ({"sourceLocation": "file:///srv/app.git"}, "NotSupported"),
        ({"arguments": [{"name": "bad name", "value": "x"}]}, "InvalidParameter"),
    ],
)
def test_schedule_run_refuses_what_it_cannot_run(
    services: Services, change: dict[str, Any], code: str
) -> None:
    async def steps(http: httpx.AsyncClient) -> httpx.Response:
        body = build_body(await uploaded(http)) | change
        return await http.post(f"{REGISTRY}/scheduleRun", params=VERSION, json=body)

    refused = session(services, steps)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == code


def test_cancel_and_the_log_url(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> list[httpx.Response]:
        await http.post(
            f"{REGISTRY}/scheduleRun", params=VERSION, json=build_body(await uploaded(http))
        )
        link = (await http.post(f"{REGISTRY}/runs/ca1/listLogSasUrl", params=VERSION)).json()
        before = await http.head(link["logLink"])
        canceled = await http.post(f"{REGISTRY}/runs/ca1/cancel", params=VERSION)
        services.run_logs.start(1, 1).write_bytes(b"line one\r\nline two\r\n")
        after = await http.head(link["logLink"])
        ranged = await http.get(link["logLink"], headers={"x-ms-range": "bytes=5-12"})
        past = await http.get(link["logLink"], headers={"x-ms-range": "bytes=99-100"})
        forged = await http.get(link["logLink"].replace("sp=r", "sp=w"))
        shown = await http.get(f"{REGISTRY}/runs/ca1", params=VERSION)
        return [before, canceled, after, ranged, past, forged, shown]

    before, canceled, after, ranged, past, forged, shown = session(services, steps)
    assert before.status_code == 404 and before.headers["x-ms-error-code"] == "BlobNotFound"
    assert canceled.status_code == 200
    assert after.status_code == 200 and after.headers["content-length"] == "20"
    assert after.headers["x-ms-meta-complete"] == "canceled"
    assert ranged.status_code == 206 and ranged.content == b"one\r\nlin"
    assert ranged.headers["content-range"] == "bytes 5-12/20"
    assert past.status_code == 416
    assert forged.status_code == 403
    assert shown.json()["properties"]["status"] == "Canceled"


def test_the_upload_url_bounds_the_context(services: Services) -> None:
    async def steps(http: httpx.AsyncClient) -> list[httpx.Response]:
        url = (await http.post(f"{REGISTRY}/listBuildSourceUploadUrl", params=VERSION)).json()[
            "uploadUrl"
        ]
        whole = await http.put(url, content=b"x" * 5000)
        blocks = [
            await http.put(f"{url}&comp=block&blockid={block}", content=b"x" * 3000)
            for block in ("YQ%3D%3D", "Yg%3D%3D")
        ]
        expired = url.replace("se=", "se=1")  # a different expiry: the signature breaks
        return [whole, *blocks, await http.put(expired, content=b"x")]

    whole, first, second, expired = session(services, steps)
    assert whole.status_code == 413 and whole.headers["x-ms-error-code"] == "RequestBodyTooLarge"
    assert first.status_code == 201
    assert second.status_code == 413
    assert expired.status_code == 403


def test_a_finished_run_shows_its_outcome(services: Services) -> None:
    registry = services.registries.for_host("localhost:5000")
    with services.meta.transaction() as tx:
        writes = RunWrites(tx)
        number = writes.add(registry.id, "QuickRun", {"kind": "x"}, None, 600)
    run = services.runs.get(registry, f"ca{number}")
    with services.meta.transaction() as tx:
        assert RunWrites(tx).claim(run.id, "test")
        RunWrites(tx).finish(
            run.id,
            "Succeeded",
            [{"registry": "localhost:5000", "repository": "a", "tag": "t", "digest": "sha256:0"}],
            None,
        )
    done = services.runs.get(registry, f"ca{number}")
    assert done.status == "Succeeded" and done.output_images[0]["repository"] == "a"
    assert done.started_at is not None and done.finished_at is not None
    # A cancel after the end changes nothing.
    assert services.runs.cancel(registry, f"ca{number}").status == "Succeeded"


def test_runs_on_postgresql(make_services, postgres) -> None:
    """Numbering, one claim per run, a cancel that stands, on PostgreSQL."""
    url = postgres.create_database("taskruns")
    migrate.upgrade(make_engine(url))
    services = make_services(
        metadata={"url": url},
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )

    async def steps(http: httpx.AsyncClient) -> list[str]:
        names = []
        for _ in range(3):
            body = build_body(await uploaded(http))
            answer = await http.post(f"{REGISTRY}/scheduleRun", params=VERSION, json=body)
            names.append(answer.json()["name"])
        return names

    assert session(services, steps) == ["ca1", "ca2", "ca3"]
    registry = services.registries.for_host("localhost:5000")
    first = services.runs.get(registry, "ca1")
    with services.meta.transaction() as tx:
        assert RunWrites(tx).claim(first.id, "one")
    with services.meta.transaction() as tx:
        assert not RunWrites(tx).claim(first.id, "two")
    services.runs.cancel(registry, "ca1")
    with services.meta.transaction() as tx:
        RunWrites(tx).finish(first.id, "Succeeded", [], None)
    assert services.runs.get(registry, "ca1").status == "Canceled"
    assert [r.run_id for r in services.runs.list(registry, parse_filter(None), 2)] == ["ca3", "ca2"]
