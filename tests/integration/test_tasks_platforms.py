"""Multi-platform builds against a real server, with the real buildah: a base pushed
first as a two-platform index (busybox bytes in both; the arm64 one only says arm64 in
its config), a Dockerfile without RUN built for linux/amd64 and linux/arm64 and pushed
as one OCI index whose digest the run lists, and a RUN step of an arm64 program (a tiny
aarch64 ELF the test writes) through qemu-user-static in the build's own binfmt_misc.
buildah, skopeo, runc and qemu-user-static come from `make install`; a test that cannot
run them fails."""

from __future__ import annotations

import base64
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer
from test_tasks import ADMIN_PASSWORD, read_log, schedule, upload, wait

from dockyard.cli.management import Management

pytestmark = pytest.mark.timeout(300)

BASE = "base/multi"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    for tool in ("buildah", "skopeo", "runc", "unshare", "qemu-aarch64-static"):
        assert shutil.which(tool), f"{tool} is missing: run make install"
    base = tmp_path_factory.mktemp("platforms")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    ).start() as running:
        push_index(running, ADMIN_PASSWORD, BASE)
        yield running


def push_index(server: RegistryServer, password: str, repository: str) -> None:
    """busybox for amd64 and arm64 as `REPOSITORY:1`, an OCI index."""
    index = images.busybox_index(("amd64", "arm64"))
    with httpx.Client(
        base_url=server.url, verify=server.verify, auth=("dockyard", password), timeout=30
    ) as http:
        for child in index.children:
            for digest, data in child.blobs.items():
                location = http.post(f"/v2/{repository}/blobs/uploads/").headers["Location"]
                done = http.put(location, params={"digest": digest}, content=data)
                assert done.status_code == 201, done.text
            done = http.put(
                f"/v2/{repository}/manifests/{child.digest}",
                content=child.manifest,
                headers={"Content-Type": child.media_type},
            )
            assert done.status_code == 201, done.text
        done = http.put(
            f"/v2/{repository}/manifests/1",
            content=index.manifest,
            headers={"Content-Type": INDEX},
        )
        assert done.status_code == 201, done.text


def client(server: RegistryServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, verify=server.verify, auth=("dockyard", ADMIN_PASSWORD), timeout=30
    )


@pytest.fixture(scope="module")
def api(server: RegistryServer) -> Iterator[Management]:
    client_id, secret = server.owner()
    with Management(
        server.host, client_id=client_id, client_secret=secret, insecure=True
    ) as management:
        yield management


def arm64_hello() -> bytes:
    """A static aarch64 Linux program that writes `hello from arm64` and exits 0: an ELF
    header, one loadable segment, eight instructions (write, exit) and the text."""
    text = b"hello from arm64\n"
    code = [
        0xD2800020,  # mov x0, #1
        0x100000E1,  # adr x1, text (28 bytes on)
        0xD2800002 | (len(text) << 5),  # mov x2, #len
        0xD2800808,  # mov x8, #64 (write)
        0xD4000001,  # svc #0
        0xD2800000,  # mov x0, #0
        0xD2800BA8,  # mov x8, #93 (exit)
        0xD4000001,  # svc #0
    ]
    body = b"".join(struct.pack("<I", word) for word in code) + text
    base, header, program_header = 0x400000, 64, 56
    size = header + program_header + len(body)
    elf = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    elf += struct.pack(
        "<HHIQQQIHHHHHH",
        2,  # executable
        183,  # aarch64
        1,
        base + header + program_header,  # entry
        header,
        0,
        0,
        header,
        program_header,
        1,
        0,
        0,
        0,
    )
    elf += struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return elf + body


def context(tmp_path: Path, server: RegistryServer, body: str) -> Path:
    (tmp_path / "Dockerfile").write_text(f"FROM {server.host}/{BASE}:1\n{body}")
    (tmp_path / "hello.txt").write_text("hello from the context\n")
    hello = tmp_path / "hello-arm64"
    hello.write_bytes(arm64_hello())
    hello.chmod(0o755)
    return tmp_path


def test_a_build_for_two_platforms_is_pushed_as_an_index(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    directory = context(tmp_path, server, "COPY hello.txt /hello.txt\n")
    platform = {"os": "linux", "architecture": "amd64,arm64"}
    run_id = schedule(api, upload(api, directory), platform=platform)["properties"]["runId"]
    log, complete = read_log(api, run_id)
    assert complete == "successful", log.decode()
    text = log.decode()
    assert "Building the image for linux/amd64" in text
    assert "Building the image for linux/arm64" in text
    done = wait(api, run_id, {"Succeeded"})
    [output] = done["properties"]["outputImages"]
    with client(server) as http:
        got = http.get(f"/v2/app/manifests/{run_id}", headers={"Accept": INDEX})
        assert got.status_code == 200 and got.headers["content-type"] == INDEX
        assert got.headers["docker-content-digest"] == output["digest"]
        manifests = got.json()["manifests"]
        assert [m["platform"] for m in manifests] == [
            {"architecture": "amd64", "os": "linux"},
            {"architecture": "arm64", "os": "linux"},
        ]
        for entry in manifests:
            child = http.get(f"/v2/app/manifests/{entry['digest']}", headers={"Accept": MANIFEST})
            config = child.json()["config"]["digest"]
            blob = http.get(f"/v2/app/blobs/{config}", follow_redirects=True).json()
            assert blob["architecture"] == entry["platform"]["architecture"]


def test_a_run_step_of_another_architecture_runs_emulated(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    body = 'COPY hello-arm64 /hello\nRUN ["/hello"]\n'
    directory = context(tmp_path, server, body)
    platform = {"os": "linux", "architecture": "arm64"}
    run_id = schedule(api, upload(api, directory), platform=platform)["properties"]["runId"]
    log, complete = read_log(api, run_id)
    assert complete == "successful", log.decode()
    assert "hello from arm64" in log.decode()
    done = wait(api, run_id, {"Succeeded"})
    [output] = done["properties"]["outputImages"]
    with client(server) as http:
        got = http.get(f"/v2/app/manifests/{run_id}", headers={"Accept": MANIFEST})
        assert got.headers["docker-content-digest"] == output["digest"]
        config = got.json()["config"]["digest"]
        assert (
            http.get(f"/v2/app/blobs/{config}", follow_redirects=True).json()["architecture"]
            == "arm64"
        )


def test_the_same_run_step_fails_natively(
    api: Management, server: RegistryServer, tmp_path: Path
) -> None:
    body = 'COPY hello-arm64 /hello\nRUN ["/hello"]\n'
    directory = context(tmp_path, server, body)
    run_id = schedule(api, upload(api, directory))["properties"]["runId"]
    log, complete = read_log(api, run_id)
    assert complete != "successful"
    # The step fails; buildah's chroot says why ("exec format error") only when its
    # child's last words reach the pipe before it is closed, which a busy machine races.
    assert 'building at STEP "RUN /hello"' in log.decode()
    done = wait(api, run_id, {"Failed"})
    assert done["properties"]["runErrorMessage"].startswith("the build failed")


def test_a_cmd_run_of_another_platform_is_refused(api: Management, server: RegistryServer):
    """Task files (a `cmd` among them) run on the server's own platform only, for now."""
    cmd = f"{server.host}/{BASE}:1 echo on {{{{.Run.Architecture}}}}"
    task = f"version: v1.1.0\nsteps: \n  - cmd: {cmd}\n"
    body = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": base64.b64encode(task.encode()).decode(),
        "values": [],
        "platform": {"os": "linux", "architecture": "arm64"},
        "credentials": {},
    }
    run_id = api.call("POST", f"{api.registry_url('dockyard')}/scheduleRun", json=body)[
        "properties"
    ]["runId"]
    done = wait(api, run_id, {"Failed"})
    assert "runs on this server's platform only" in done["properties"]["runErrorMessage"]
