"""A Dockerfile built for each platform of a run, and a multi-platform result pushed as
one OCI image index. Each platform gets a storage of its own in the run's directory,
since its bases carry the same names as the other platforms' (skopeo pulls each
platform's image of a multi-platform base); a build for another architecture than the
server's runs its RUN steps through qemu-user-static (`emulation.py`), and fails at once,
with the reason, when this server has no emulator for it. Stages without RUN need none.

The runner hands in how a step runs, how notes reach the log and how a base is pulled,
so that this module knows nothing of runs or the database."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dockyard.tasks import emulation
from dockyard.tasks.builder import Tls, Workspace, base_images, full_name, has_run
from dockyard.tasks.platforms import Platform, host_platform

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REF_NAME = "org.opencontainers.image.ref.name"
_INDEX_NAME = "index"

Step = Callable[[list[str], str, dict[str, str] | None], Awaitable[None]]
Capture = Callable[[list[str]], Awaitable[str]]
Pull = Callable[[Workspace, str, Platform], Awaitable[None]]


class PlatformUnbuildable(Exception):
    """The run cannot build for a platform; the message says why."""


class EmulatorMissing(PlatformUnbuildable):
    """A RUN step of another architecture, and no emulator for it on this server."""


class BaseMismatch(PlatformUnbuildable):
    """A base image has no image of the platform (a single-platform image of another)."""


@dataclass(frozen=True)
class BuildRequest:
    dockerfile: Path
    tags: list[str]
    arguments: list[str]
    target: str | None
    no_cache: bool
    secrets: dict[str, str]


@dataclass(frozen=True)
class PlatformBuilds:
    step: Step
    note: Callable[[str], None]
    pull: Pull
    capture: Capture  # a query's output ("" if it failed)

    async def build(
        self, workspace: Workspace, platforms: list[Platform], request: BuildRequest
    ) -> dict[Platform, Workspace]:
        """Each platform built into its own storage; the storages by platform."""
        text = request.dockerfile.read_text(errors="replace")
        runs = has_run(text)
        native = host_platform().architecture
        built: dict[Platform, Workspace] = {}
        for platform in platforms:
            space = replace(workspace, store=f"-{platform.slug}")
            if runs and platform.architecture != native:
                space = emulated(space, platform)
            await asyncio.to_thread(space.prepare)
            for image in base_images(text):
                await self.pull(space, full_name(image), platform)
                found = await self.capture(space.image_architecture(full_name(image)))
                if found and found != platform.architecture:
                    raise BaseMismatch(
                        f"{image} has no image for {platform.text} (only linux/{found}): "
                        "a base must be an index listing every platform the run builds for"
                    )
            self.note(f"Building the image for {platform.text}...")
            await self.step(
                space.build(
                    request.dockerfile,
                    request.tags,
                    request.arguments,
                    request.target,
                    request.no_cache,
                    platform=platform.text,
                ),
                f"the build for {platform.text} failed"
                if len(platforms) > 1
                else "the build failed",
                request.secrets,
            )
            built[platform] = space
        return built

    async def push_index(
        self,
        workspace: Workspace,
        built: dict[Platform, Workspace],
        image: str,
        references: list[str],
        token: Callable[[str], str],
        tls: Tls,
    ) -> list[str]:
        """The platforms' images (`image` in each storage) and an index over them, pushed
        under each of `references`; the index's digest for each. `token(reference)`."""
        layout = workspace.root / "layout"
        for platform, space in built.items():
            await self.step(
                space.export(image, layout, platform.slug),
                f"exporting the {platform.text} image failed",
                None,
            )
        await asyncio.to_thread(_add_index, layout, {p.slug: p for p in built})
        digests = []
        for reference in references:
            self.note(f"Pushing image index: {reference}...")
            digest_file = workspace.root / "digest"
            await self.step(
                workspace.push_index(
                    layout, _INDEX_NAME, reference, token(reference), tls, digest_file
                ),
                f"pushing {reference} failed",
                None,
            )
            digests.append(digest_file.read_text().strip())
        return digests


def emulated(workspace: Workspace, platform: Platform) -> Workspace:
    """`workspace` whose steps run `platform`'s programs through its emulator."""
    try:
        prefix = emulation.step_prefix(platform.architecture)
    except emulation.NoEmulator:
        raise EmulatorMissing(
            f"running programs of {platform.text} needs an emulator: this server has no "
            f"qemu-user-static for {platform.architecture} (a Dockerfile without RUN "
            "steps builds for it all the same)"
        ) from None
    return replace(workspace, network=(*prefix, *workspace.network))


def _add_index(layout: Path, platforms: dict[str, Platform]) -> None:
    """An OCI index over the layout's images (named by platform slug), added to the layout
    as `index`."""
    top = json.loads((layout / "index.json").read_text())
    named = {d.get("annotations", {}).get(_REF_NAME): d for d in top["manifests"]}
    entries: list[dict[str, Any]] = [
        {
            "mediaType": named[slug]["mediaType"],
            "digest": named[slug]["digest"],
            "size": named[slug]["size"],
            "platform": platform.oci(),
        }
        for slug, platform in platforms.items()
    ]
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    top["manifests"].append(
        {
            "mediaType": OCI_INDEX,
            "digest": f"sha256:{digest}",
            "size": len(data),
            "annotations": {_REF_NAME: _INDEX_NAME},
        }
    )
    (layout / "index.json").write_text(json.dumps(top))
