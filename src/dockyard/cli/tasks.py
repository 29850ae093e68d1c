"""`dockyard build` and `dockyard run --cmd`, as `az acr build` and `az acr run --cmd`:
the context packed (`.dockerignore` honoured, VCS directories left out) and uploaded to
the URL the server hands out, the run scheduled through the management API's
`scheduleRun` (cli/management.py), its log streamed as the server writes it, the exit
status the run's outcome."""

from __future__ import annotations

import base64
import fnmatch
import io
import os
import sys
import tarfile
import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command
from dockyard.tasks.platforms import PlatformInvalid, from_text

RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry", "-r", help="Registry name (or its login server).", show_default=False
    ),
]
TimeoutOption = Annotated[
    int | None, typer.Option("--timeout", help="The run's timeout in seconds (300 to 28800).")
]
NoLogsOption = Annotated[
    bool, typer.Option("--no-logs", help="Do not stream the log; wait for the outcome.")
]
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Print the queued run and return at once.")
]

_ALWAYS_LEFT_OUT = {".git", ".gitignore", ".hg", ".svn", ".bzr", ".venv"}
_POLL_SECONDS = 1.0
_FINISHED = {"Succeeded", "Failed", "Canceled", "Error", "Timeout"}


def _ignored_patterns(context: Path, dockerfile: Path) -> list[str]:
    for candidate in (
        dockerfile.with_name(dockerfile.name + ".dockerignore"),
        context / ".dockerignore",
    ):
        if candidate.is_file():
            lines = candidate.read_text().splitlines()
            return [
                line.strip().rstrip("/")
                for line in lines
                if line.strip() and not line.startswith("#")
            ]
    return []


def _left_out(relative: str, patterns: list[str]) -> bool:
    """`.dockerignore`'s patterns, read simply: a match leaves a file out, `!` puts it
    back (the last that matches decides)."""
    if relative.split("/", 1)[0] in _ALWAYS_LEFT_OUT:
        return True
    out = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").lstrip("/")
        if fnmatch.fnmatch(relative, bare) or fnmatch.fnmatch(relative, bare + "/*"):
            out = not negated
    return out


def pack(context: Path, dockerfile: Path) -> tuple[bytes, str]:
    """The context as a tar.gz, and the Dockerfile's path in it (a Dockerfile outside
    the context is added at its root, as az does)."""
    patterns = _ignored_patterns(context, dockerfile)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for root, directories, files in os.walk(context):
            relative_root = Path(root).relative_to(context)
            directories[:] = [
                d
                for d in sorted(directories)
                if not _left_out((relative_root / d).as_posix(), patterns)
            ]
            for name in sorted(files):
                relative = (relative_root / name).as_posix()
                if not _left_out(relative, patterns):
                    archive.add(Path(root) / name, arcname=relative, recursive=False)
        try:
            inside = dockerfile.resolve().relative_to(context.resolve()).as_posix()
        except ValueError:
            inside = f"{uuid.uuid4().hex}_{dockerfile.name}"
            archive.add(dockerfile, arcname=inside)
    return buffer.getvalue(), inside


def _upload(api: Management, registry: str, data: bytes) -> str:
    target = api.call("POST", f"{api.registry_url(registry)}/listBuildSourceUploadUrl")
    done = api.unauthenticated(
        "PUT",
        target["uploadUrl"],
        content=data,
        headers={"x-ms-blob-type": "BlockBlob", "Content-Type": "application/octet-stream"},
    )
    if done.status_code != 201:
        fail(f"uploading the context failed: {done.status_code} {done.text[:200]}")
    return str(target["relativePath"])


def _follow(api: Management, registry: str, run: dict[str, Any], logs: bool) -> None:
    """Stream the run's log (or wait for it), then exit with its outcome."""
    run_id = run["properties"]["runId"]
    url = f"{api.registry_url(registry)}/runs/{run_id}"
    if logs:
        link = api.call("POST", f"{url}/listLogSasUrl")["logLink"]
        start = 0
        while True:
            head = api.unauthenticated("HEAD", link)
            available = int(head.headers.get("content-length", 0)) if head.status_code == 200 else 0
            if start < available:
                part = api.unauthenticated(
                    "GET", link, headers={"x-ms-range": f"bytes={start}-{available - 1}"}
                )
                sys.stdout.write(part.content.decode("utf-8", "replace").replace("\r\n", "\n"))
                sys.stdout.flush()
                start += len(part.content)
                continue
            if head.headers.get("x-ms-meta-complete"):
                break
            time.sleep(_POLL_SECONDS)
    status = api.call("GET", url)["properties"]["status"]
    while status not in _FINISHED:
        time.sleep(_POLL_SECONDS)
        status = api.call("GET", url)["properties"]["status"]
    if status != "Succeeded":
        fail(f"run {run_id}: {status}")
    console.print(f"run {run_id}: {status}")


def build(
    api: Management,
    registry: RegistryOption,
    context: Annotated[Path, typer.Argument(help="The build context: a local directory.")],
    image: Annotated[
        list[str] | None,
        typer.Option("--image", "-t", help="REPOSITORY:TAG to push; {{.Run.ID}} allowed (repeat)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="The Dockerfile (default: CONTEXT/Dockerfile)."),
    ] = None,
    build_arg: Annotated[
        list[str] | None, typer.Option("--build-arg", help="NAME=VALUE (repeat).")
    ] = None,
    secret_build_arg: Annotated[
        list[str] | None,
        typer.Option("--secret-build-arg", help="NAME=VALUE, kept out of the run (repeat)."),
    ] = None,
    target: Annotated[str | None, typer.Option("--target", help="The stage to build.")] = None,
    no_push: Annotated[bool, typer.Option("--no-push", help="Build only.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Build every step again.")] = False,
    platform: Annotated[
        str,
        typer.Option(
            "--platform",
            help="linux/ARCH or linux/ARCH/VARIANT, or a comma list of them (one image index).",
        ),
    ] = "linux/amd64",
    timeout: TimeoutOption = None,
    no_logs: NoLogsOption = False,
    no_wait: NoWaitOption = False,
) -> None:
    """Build an image from a local context on the server and push it to the registry."""
    try:
        platforms = from_text(platform)
    except PlatformInvalid as exc:
        fail(exc.message)
    if not context.is_dir():
        fail(f"{context} is not a directory")
    dockerfile = file or context / "Dockerfile"
    if not dockerfile.is_file():
        fail(f"no Dockerfile at {dockerfile}")
    data, dockerfile_path = pack(context, dockerfile)
    arguments = []
    for given, secret in ((build_arg or [], False), (secret_build_arg or [], True)):
        for item in given:
            name, equals, value = item.partition("=")
            if not equals:
                fail(f"{item!r}: give NAME=VALUE")
            arguments.append({"type": "Argument", "name": name, "value": value, "isSecret": secret})
    body: dict[str, Any] = {
        "type": "DockerBuildRequest",
        "imageNames": image or [],
        "isPushEnabled": bool(image) and not no_push,
        "noCache": no_cache,
        "sourceLocation": _upload(api, registry, data),
        "dockerFilePath": dockerfile_path,
        "arguments": arguments,
        "platform": platforms,
        "credentials": {},
    }
    if target:
        body["target"] = target
    if timeout is not None:
        body["timeout"] = timeout
    run = api.call("POST", f"{api.registry_url(registry)}/scheduleRun", json=body)
    console.print(f"Queued a build with ID: {run['properties']['runId']}", highlight=False)
    if not no_wait:
        _follow(api, registry, run, not no_logs)


def run_command(
    api: Management,
    registry: RegistryOption,
    cmd: Annotated[str, typer.Option("--cmd", help="IMAGE [ARGS]: the container to run.")],
    timeout: TimeoutOption = None,
    no_logs: NoLogsOption = False,
    no_wait: NoWaitOption = False,
) -> None:
    """Run one container on the server (az acr run --cmd)."""
    task = f"version: v1.1.0\nsteps: \n  - cmd: {cmd}\n    disableWorkingDirectoryOverride: true\n"
    body: dict[str, Any] = {
        "type": "EncodedTaskRunRequest",
        "encodedTaskContent": base64.b64encode(task.encode()).decode(),
        "values": [],
        "platform": {"os": "linux", "architecture": "amd64"},
        "credentials": {},
    }
    if timeout is not None:
        body["timeout"] = timeout
    run = api.call("POST", f"{api.registry_url(registry)}/scheduleRun", json=body)
    console.print(f"Queued a run with ID: {run['properties']['runId']}", highlight=False)
    if not no_wait:
        _follow(api, registry, run, not no_logs)


def register(app: typer.Typer) -> None:
    command(app, "build", rich_help_panel=ONLINE)(build)
    command(app, "run", rich_help_panel=ONLINE)(run_command)
