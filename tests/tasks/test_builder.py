"""What a run's build is given: the base images its Dockerfile names, their full names,
and the commands' shape (chroot isolation, no network, the run's own storage)."""

from __future__ import annotations

from pathlib import Path

from dockyard.tasks.builder import Tls, Workspace, base_images, full_name


def test_base_images_skip_stages_scratch_and_arguments() -> None:
    dockerfile = """# syntax=docker/dockerfile:1
ARG VERSION=1
FROM --platform=linux/amd64 localhost:5000/base:1 AS build
RUN make
FROM build AS test
FROM scratch
FROM busybox:${VERSION}
FROM \\
    alpine
COPY --from=build /out /out
"""
    assert base_images(dockerfile) == ["localhost:5000/base:1", "alpine"]


def test_full_names() -> None:
    assert full_name("busybox") == "docker.io/library/busybox:latest"
    assert full_name("team/app:v1") == "docker.io/team/app:v1"
    assert full_name("localhost:5000/app") == "localhost:5000/app:latest"
    assert full_name("reg.example/app@sha256:" + "0" * 64).endswith("@sha256:" + "0" * 64)


def test_builds_run_isolated_in_the_run_s_own_storage(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ca1", "vfs")
    command = workspace.build(
        tmp_path / "ca1/context/Dockerfile", ["h/app:1"], ["A=1"], None, False
    )
    assert command[:3] == ["unshare", "--net", "--"]
    # runc, in the namespace `unshare` made (buildah makes none of its own)
    assert command[command.index("--isolation") + 1] == "oci"
    assert command[command.index("--network") + 1] == "host"
    assert command[command.index("--root") + 1] == str(tmp_path / "ca1" / "storage")
    assert "--pull=never" in command and "--privileged" not in command
    push = workspace.push("h/app:1", "TOKEN", Tls(False), tmp_path / "digest")
    assert "--dest-tls-verify=false" in push and push[-1] == "docker://h/app:1"
    assert workspace.environment("/bin")["HOME"] == str(tmp_path / "ca1")
