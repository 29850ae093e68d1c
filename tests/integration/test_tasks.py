"""ACR Tasks' quick builds against a real server with logins on, driven through its
management API by the CLI's own client (`Management`, in this process): the context
uploaded to the URL the server hands out, `scheduleRun`, a real buildah build of a small
Dockerfile on a busybox base pushed to the registry first, the push with the run's own
token, the log read as az reads it (HEAD, ranged GET, `x-ms-meta-Complete`), listing,
cancel, and the upload URL's refusals. buildah, skopeo and runc come from `make install`;
a test that cannot run them fails."""

from __future__ import annotations

import base64
import io
import shutil
import socket
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import images
import pytest
from conftest import RegistryServer, run_cli

from dockyard.cli.management import Management
from dockyard.cli.tasks import pack

pytestmark = pytest.mark.timeout(300)

ADMIN_PASSWORD = "admin-secret-for-tasks"
BASE = "base/busybox"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    for tool in ("buildah", "skopeo", "runc", "unshare"):
        assert shutil.which(tool), f"{tool} is missing: run make install"
    base = tmp_path_factory.mktemp("tasks")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    ).start() as running:
        push_busybox(running, ADMIN_PASSWORD)
        yield running


def push_busybox(server: RegistryServer, password: str) -> None:
    """busybox as `base/busybox:1`, the base the tests' Dockerfiles build on."""
    image = images.busybox_image()
    with httpx.Client(
        base_url=server.url, verify=server.verify, auth=("dockyard", password), timeout=30
    ) as http:
        for data in image.blobs.values():
            location = http.post(f"/v2/{BASE}/blobs/uploads/").headers["Location"]
            done = http.put(location, params={"digest": images.sha256_digest(data)}, content=data)
            assert done.status_code == 201, done.text
        done = http.put(
            f"/v2/{BASE}/manifests/1",
            content=image.manifest,
            headers={"Content-Type": image.media_type},
        )
        assert done.status_code == 201, done.text


@pytest.fixture(scope="module")
def api(server: RegistryServer) -> Iterator[Management]:
    client_id, secret = server.owner()
    with Management(
        server.host, client_id=client_id, client_secret=secret, insecure=True
    ) as management:
        yield management


def context(tmp_path: Path, server: RegistryServer, body: str) -> Path:
    (tmp_path / "Dockerfile").write_text(f"FROM {server.host}/{BASE}:1\n{body}")
    (tmp_path / "hello.txt").write_text("hello from the context\n")
    return tmp_path


def upload(api: Management, directory: Path) -> str:
    data, _ = pack(directory, directory / "Dockerfile")
    target = api.call("POST", f"{api.registry_url('dockyard')}/listBuildSourceUploadUrl")
    assert target["relativePath"].startswith("source/")
    done = api.unauthenticated(
        "PUT", target["uploadUrl"], content=data, headers={"x-ms-blob-type": "BlockBlob"}
    )
    assert done.status_code == 201, done.text
    assert done.headers["etag"] and done.headers["last-modified"]
    return target["relativePath"]


def schedule(api: Management, source: str, **extra: Any) -> dict[str, Any]:
    body = {
        "type": "DockerBuildRequest",
        "imageNames": ["app:{{.Run.ID}}"],
        "isPushEnabled": True,
        "sourceLocation": source,
        "dockerFilePath": "Dockerfile",
        "platform": {"os": "linux", "architecture": "amd64"},
        "arguments": [{"type": "Argument", "name": "GREETING", "value": "hi", "isSecret": False}],
        "credentials": {},
        **extra,
    }
    return api.call("POST", f"{api.registry_url('dockyard')}/scheduleRun", json=body)


def wait(api: Management, run_id: str, statuses: set[str], seconds: float = 240) -> dict:
    url = f"{api.registry_url('dockyard')}/runs/{run_id}"
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run = api.call("GET", url)
        if run["properties"]["status"] in statuses:
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} still {run['properties']['status']}")


def read_log(api: Management, run_id: str) -> tuple[bytes, str]:
    """The log as az reads it: HEAD for the size, 4 KiB ranged GETs, until Complete."""
    link = api.call("POST", f"{api.registry_url('dockyard')}/runs/{run_id}/listLogSasUrl")
    assert link["logArtifactLink"] == ""
    data = b""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        head = api.unauthenticated("HEAD", link["logLink"])
        if head.status_code == 404:  # not started yet
            assert head.headers["x-ms-error-code"] == "BlobNotFound"
            time.sleep(0.5)
            continue
        assert head.status_code == 200, head.text
        size = int(head.headers["content-length"])
        while len(data) < size:
            end = min(len(data) + 4095, size - 1)
            part = api.unauthenticated(
                "GET", link["logLink"], headers={"x-ms-range": f"bytes={len(data)}-{end}"}
            )
            assert part.status_code == 206, part.text
            # The total may have grown since the HEAD: the run is still writing.
            shown, _, total = part.headers["content-range"].partition("/")
            assert shown == f"bytes {len(data)}-{end}" and int(total) >= size
            data += part.content
        complete = head.headers.get("x-ms-meta-complete")
        if complete:
            return data, complete
        time.sleep(0.5)
    raise AssertionError(f"the log of {run_id} never completed: {data.decode()}")


def test_a_build_is_pushed_with_its_log(api: Management, server: RegistryServer, tmp_path: Path):
    directory = context(
        tmp_path,
        server,
        'ARG GREETING\nCOPY hello.txt /hello.txt\nRUN echo "$GREETING from RUN" > /greeting\n',
    )
    run = schedule(api, upload(api, directory))
    run_id = run["properties"]["runId"]
    assert run["name"] == run_id and run_id.startswith("ca")
    assert run["properties"]["status"] in ("Queued", "Running")  # the runner may be quick
    assert run["properties"]["runType"] == "QuickBuild"

    log, complete = read_log(api, run_id)
    assert complete == "successful", log.decode()
    text = log.decode()
    assert b"\r\n" in log and "\n" not in text.replace("\r\n", "")
    assert "STEP 4/4: RUN" in text and f"Run ID: {run_id} was successful" in text
    assert ADMIN_PASSWORD not in text

    done = wait(api, run_id, {"Succeeded"})
    [output] = done["properties"]["outputImages"]
    assert output["repository"] == "app" and output["tag"] == run_id
    assert output["registry"] == server.host and output["digest"].startswith("sha256:")
    # The image is there, and holds what the build made.
    with httpx.Client(base_url=server.url, auth=("dockyard", ADMIN_PASSWORD), timeout=30) as http:
        manifest = http.get(
            f"/v2/app/manifests/{run_id}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert manifest.status_code == 200
        assert manifest.headers["docker-content-digest"] == output["digest"]
        # The last layer holds what COPY and RUN (with the build argument) made.
        layer = manifest.json()["layers"][-1]["digest"]
        blob = http.get(f"/v2/app/blobs/{layer}", follow_redirects=True)
        with tarfile.open(fileobj=io.BytesIO(blob.content)) as archive:
            files = {m.name.lstrip("./"): m for m in archive.getmembers()}
            greeting = archive.extractfile(files["greeting"])
            assert greeting is not None and greeting.read() == b"hi from RUN\n"
            assert "hello.txt" in files
    # The run's storage and its uploaded context are gone.
    tasks = server.data_dir / "tasks"
    assert list((tasks / "work").iterdir()) == []
    assert [p for p in (tasks / "sources").rglob("*") if p.is_file()] == []


def test_a_failing_build_fails_and_says_why(api: Management, server: RegistryServer, tmp_path):
    directory = context(tmp_path, server, "RUN exit 3\n")
    run_id = schedule(api, upload(api, directory))["properties"]["runId"]
    log, complete = read_log(api, run_id)
    assert complete == "failed"
    assert b"the build failed (exit status" in log
    done = wait(api, run_id, {"Failed"})
    assert done["properties"]["outputImages"] == []
    assert "the build failed" in done["properties"]["runErrorMessage"]


def test_cancel_stops_a_running_build(api: Management, server: RegistryServer, tmp_path):
    directory = context(tmp_path, server, "RUN sleep 120\n")
    run_id = schedule(api, upload(api, directory))["properties"]["runId"]
    wait(api, run_id, {"Running"})
    url = f"{api.registry_url('dockyard')}/runs/{run_id}"
    cancel = api.request("POST", f"{url}/cancel")
    assert cancel.status_code == 200
    started = time.monotonic()
    _, complete = read_log(api, run_id)
    assert complete == "canceled" and time.monotonic() - started < 30
    assert wait(api, run_id, {"Canceled"})["properties"]["status"] == "Canceled"


def test_runs_are_listed_and_filtered(api: Management, server: RegistryServer, tmp_path):
    registry = api.registry_url("dockyard")
    directory = context(tmp_path, server, "RUN true\n")
    run_id = schedule(api, upload(api, directory))["properties"]["runId"]
    wait(api, run_id, {"Succeeded"})
    listed = api.call("GET", f"{registry}/runs", params={"$top": "1"})["value"]
    assert [r["name"] for r in listed] == [run_id]
    succeeded = api.call("GET", f"{registry}/runs", params={"$filter": "Status eq 'Succeeded'"})[
        "value"
    ]
    assert run_id in [r["name"] for r in succeeded]
    assert all(r["properties"]["status"] == "Succeeded" for r in succeeded)
    by_task = api.call("GET", f"{registry}/runs", params={"$filter": "TaskName eq 'nightly'"})
    assert by_task["value"] == []
    refused = api.request("GET", f"{registry}/runs", params={"$filter": "contains(x, 'y')"})
    assert refused.status_code == 400
    assert api.request("GET", f"{registry}/runs/ca999999").status_code == 404


def test_the_upload_url_is_its_own_credential(api: Management, server: RegistryServer):
    registry = api.registry_url("dockyard")
    url = api.call("POST", f"{registry}/listBuildSourceUploadUrl")["uploadUrl"]
    forged = url.replace("sp=w", "sp=r")
    assert api.unauthenticated("PUT", forged, content=b"x").status_code == 403
    tampered = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    refused = api.unauthenticated("PUT", tampered, content=b"x")
    assert refused.status_code == 403
    assert refused.headers["x-ms-error-code"] == "AuthenticationFailed"
    # Blocks, then the list that orders them.
    for block_id, data in (("YQ==", b"first "), ("Yg==", b"second")):
        block = f"{url}&comp=block&blockid={quote(block_id, safe='')}"
        done = api.unauthenticated("PUT", block, content=data)
        assert done.status_code == 201, done.text
    listing = (
        b"<?xml version='1.0' encoding='utf-8'?>"
        b"<BlockList><Latest>YQ==</Latest><Latest>Yg==</Latest></BlockList>"
    )
    done = api.unauthenticated("PUT", f"{url}&comp=blocklist", content=listing)
    assert done.status_code == 201, done.text
    # A context never uploaded is refused when the run is scheduled.
    never = api.call("POST", f"{registry}/listBuildSourceUploadUrl")["relativePath"]
    body = {"type": "DockerBuildRequest", "sourceLocation": never, "dockerFilePath": "Dockerfile"}
    refused = api.request("POST", f"{registry}/scheduleRun", json=body)
    assert refused.status_code == 400 and "not uploaded" in refused.text


def test_dockyard_build(server: RegistryServer, tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    directory = context(tmp_path / "ctx", server, "RUN echo built > /built\n")
    client_id, secret = server.owner()
    result = run_cli(
        "build",
        "-r",
        "dockyard",
        "-t",
        "cli:{{.Run.ID}}",
        str(directory),
        "--server",
        server.host,
        "--insecure",
        "--client-id",
        client_id,
        "--client-secret",
        secret,
        env={"HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully pushed image" in result.stdout
    assert "Succeeded" in result.stdout


def test_a_cmd_run(api: Management, server: RegistryServer) -> None:
    """`az acr run --cmd` 's request: one container run from an image of this registry."""
    task = (
        "version: v1.1.0\nsteps: \n"
        "  - cmd: $Registry/base/busybox:1 echo hello from {{.Run.ID}}\n"
        "    disableWorkingDirectoryOverride: true\n"
    )
    body = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": base64.b64encode(task.encode()).decode(),
        "values": [],
        "platform": {"os": "linux", "architecture": "amd64"},
        "credentials": {},
    }
    run = api.call("POST", f"{api.registry_url('dockyard')}/scheduleRun", json=body)
    run_id = run["properties"]["runId"]
    assert run["properties"]["runType"] == "QuickRun"
    log, complete = read_log(api, run_id)
    assert complete == "successful", log.decode()
    assert f"hello from {run_id}\r\n".encode() in log
    # A task file that cannot run is refused when it is scheduled, with ARM's error.
    body["encodedTaskContent"] = base64.b64encode(b"steps:\n  - cmd: x\n    colour: red\n")
    body["encodedTaskContent"] = body["encodedTaskContent"].decode()
    refused = api.request("POST", f"{api.registry_url('dockyard')}/scheduleRun", json=body)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "InvalidParameter"
    assert "unknown key 'colour'" in refused.json()["error"]["message"]


MULTI_STEP = """version: v1.1.0
steps:
  - id: one
    cmd: >-
      $Registry/base/busybox:1 sh -c
      "sleep 2; echo from {{.Values.who}} > one.txt; echo step one ran"
    when: ["-"]
  - id: two
    cmd: $Registry/base/busybox:1 sh -c "sleep 2; echo step two ran in $PWD as $MODE"
    env: [MODE=parallel]
    when: ["-"]
  - id: image
    build: -t multi:{{.Run.ID}} --build-arg GREETING=hi .
    when: [one, two]
  - push: ["multi:$ID"]
"""


def test_a_multi_step_task_file(api: Management, server: RegistryServer, tmp_path: Path):
    """`az acr run -f acr-task.yaml DIR`'s request: two `cmd` steps at once, then a build
    of what the first left in the context, then its push (a short name: this
    registry's)."""
    directory = context(tmp_path, server, "ARG GREETING\nCOPY one.txt /one.txt\n")
    (directory / "acr-task.yaml").write_text(MULTI_STEP)
    body = {
        "type": "FileTaskRunRequest",
        "taskFilePath": "acr-task.yaml",
        "values": [{"type": "SetValue", "name": "who", "value": "values", "isSecret": False}],
        "sourceLocation": upload(api, directory),
        "platform": {"os": "linux", "architecture": "amd64"},
        "credentials": {},
    }
    run = api.call("POST", f"{api.registry_url('dockyard')}/scheduleRun", json=body)
    run_id = run["properties"]["runId"]
    assert run["properties"]["runType"] == "QuickRun"
    log, complete = read_log(api, run_id)
    text = log.decode()
    assert complete == "successful", text
    assert "step one ran\r\n" in text and "step two ran in /workspace as parallel\r\n" in text
    # Both started before either ended; the build after both, the push after it.
    first_done = text.index("marked as successful")
    assert text.index("Executing step ID: one.") < first_done
    assert text.index("Executing step ID: two.") < first_done
    assert text.index("Step ID: one marked as successful") < text.index("Executing step ID: image")
    assert text.index("Step ID: image marked") < text.index("Executing step ID: acb_step_3")
    done = wait(api, run_id, {"Succeeded"})
    [output] = done["properties"]["outputImages"]
    assert output["repository"] == "multi" and output["tag"] == run_id
    with httpx.Client(base_url=server.url, auth=("dockyard", ADMIN_PASSWORD), timeout=30) as http:
        manifest = http.get(
            f"/v2/multi/manifests/{run_id}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert manifest.headers["docker-content-digest"] == output["digest"]
        layer = manifest.json()["layers"][-1]["digest"]
        blob = http.get(f"/v2/multi/blobs/{layer}", follow_redirects=True)
        with tarfile.open(fileobj=io.BytesIO(blob.content)) as archive:
            member = archive.extractfile("one.txt")
            assert member is not None and member.read() == b"from values\n"


def test_a_failing_step_fails_the_run(api: Management, server: RegistryServer, tmp_path):
    task = (
        "version: v1.1.0\nsteps:\n"
        "  - id: fine\n    cmd: $Registry/base/busybox:1 false\n    ignoreErrors: true\n"
        "  - id: broken\n    cmd: $Registry/base/busybox:1 sh -c 'exit 4'\n"
        "  - id: never\n    cmd: $Registry/base/busybox:1 echo never ran\n"
    )
    body = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": base64.b64encode(task.encode()).decode(),
        "values": [],
        "platform": {"os": "linux", "architecture": "amd64"},
    }
    run_id = api.call("POST", f"{api.registry_url('dockyard')}/scheduleRun", json=body)[
        "properties"
    ]["runId"]
    log, complete = read_log(api, run_id)
    text = log.decode()
    assert complete == "failed", text
    assert "Step ID: fine failed, its errors are ignored" in text and "never ran" not in text
    done = wait(api, run_id, {"Failed"})
    assert "failed to run step ID: broken" in done["properties"]["runErrorMessage"]
    assert "exit status 4" in done["properties"]["runErrorMessage"]


def test_dockyard_run(server: RegistryServer, tmp_path: Path) -> None:
    client_id, secret = server.owner()
    target = ("--server", server.host, "--insecure", "--client-id", client_id)
    result = run_cli(
        "run",
        "-r",
        "dockyard",
        "--cmd",
        "{{.Run.Registry}}/base/busybox:1 echo run by dockyard",
        *target,
        "--client-secret",
        secret,
        env={"HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "run by dockyard\n" in result.stdout and "Succeeded" in result.stdout


def test_a_run_step_reaches_the_registry_and_nothing_else(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    """RUN reaches this registry's API at its login server (a 401 asking for a login),
    not the server's other ports (the management API's host is on this one: another
    loopback port stands for everything else)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        body = (
            f"RUN wget -S -O /dev/null http://{server.host}/v2/ 2>&1 || true\n"
            f"RUN wget -O /dev/null http://127.0.0.1:{port}/ 2>&1 || true\n"
        )
        run_id = schedule(api, upload(api, context(tmp_path, server, body)))["properties"]["runId"]
        log, complete = read_log(api, run_id)
    text = log.decode()
    assert complete == "successful", text
    assert "HTTP/1.1 401" in text and "Connection refused" in text, text
