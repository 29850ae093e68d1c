"""The platforms a run builds for, as requests give them and the runner reads them, the
emulator's binfmt_misc registration, and the error a build gets when no emulator is
there for a foreign RUN."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from dockyard.tasks import emulation
from dockyard.tasks.builder import Workspace, has_run
from dockyard.tasks.platform_builds import EmulatorMissing, emulated
from dockyard.tasks.platforms import (
    Platform,
    PlatformInvalid,
    checked_platform,
    from_text,
    platforms_of,
)
from dockyard.tasks.requests import RunRequestInvalid, RunRequestUnsupported, parse_run_request


def test_one_platform_is_kept_as_acr_gives_it() -> None:
    assert checked_platform(None) == {"os": "linux", "architecture": "amd64"}
    assert checked_platform({"os": "Linux", "architecture": "x86_64"}) == {
        "os": "linux",
        "architecture": "amd64",
    }
    kept = checked_platform({"os": "linux", "architecture": "arm64", "variant": "v8"})
    assert kept == {"os": "linux", "architecture": "arm64", "variant": "v8"}
    assert platforms_of(kept) == [Platform("linux", "arm64", "v8")]


def test_a_list_of_platforms() -> None:
    kept = from_text("linux/amd64,linux/arm/v7, linux/arm64")
    assert kept == {"os": "linux", "architecture": "amd64,arm/v7,arm64"}
    assert [p.text for p in platforms_of(kept)] == ["linux/amd64", "linux/arm/v7", "linux/arm64"]
    assert Platform("linux", "arm", "v7").skopeo_options() == [
        "--override-os",
        "linux",
        "--override-arch",
        "arm",
        "--override-variant",
        "v7",
    ]


@pytest.mark.parametrize(
    "platform",
    [
        {"architecture": "mips"},
        {"architecture": "amd64,amd64"},
        {"architecture": "amd64", "variant": "v7"},
        "linux/amd64",
    ],
)
def test_bad_platforms_are_refused(platform) -> None:
    with pytest.raises(PlatformInvalid):
        checked_platform(platform)


def test_requests_refuse_what_dockyard_does_not_build() -> None:
    body = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": base64.b64encode(b"steps:\n  - cmd: busybox true\n").decode(),
    }
    with pytest.raises(RunRequestUnsupported):
        parse_run_request({**body, "platform": {"os": "Windows"}}, str)
    with pytest.raises(RunRequestInvalid):
        parse_run_request({**body, "platform": {"architecture": "vax"}}, str)
    plan = parse_run_request({**body, "platform": {"architecture": "arm64"}}, str)
    assert plan.platform == {"os": "linux", "architecture": "arm64"}


def test_the_registration_names_the_static_emulator() -> None:
    line = emulation.registration("arm64")
    assert line.startswith(":qemu-aarch64:M::")
    assert line.endswith(":/usr/bin/qemu-aarch64-static:F")


def test_without_an_emulator_a_foreign_run_step_fails_at_once(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(emulation, "_EMULATORS", tmp_path)
    with pytest.raises(EmulatorMissing, match="no qemu-user-static for arm64"):
        emulated(Workspace(tmp_path, "vfs"), Platform("linux", "arm64"))


def test_run_steps_are_found() -> None:
    assert has_run("FROM a\n# RUN no\nRUN \\\n  true\n")
    assert not has_run("FROM a\nCOPY run /run\n")
