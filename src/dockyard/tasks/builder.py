"""The commands of one run, for buildah and skopeo, as argument lists: a run's own
storage and containers configuration (`Workspace`), the base images a Dockerfile names
(`base_images`), the pulls and pushes with a bearer token, the build itself. Builds and
`cmd` containers run under runc (`ISOLATION`), in the namespace of the
run's network (`Workspace.network`: by default a namespace of their own where RUN steps
reach the registry only, see `registry_network.py`); bases are pulled beforehand by
skopeo outside it. Pure but for
`Workspace.prepare`, which writes the run's configuration files."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# What the run's skopeo and buildah trust: every image (Dockyard checks nothing on
# pull here; signatures are another feature's), and where short names resolve.
_POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}\n'
_REGISTRIES = 'unqualified-search-registries = ["docker.io"]\nshort-name-mode = "permissive"\n'
_ARG = re.compile(r"\$\{?\w+")


@dataclass(frozen=True)
class Tls:
    """How the run's tools reach this server: verify with `cert_dir` (the development
    certificate), or the system's trust; `verify` False for plain HTTP."""

    verify: bool
    cert_dir: Path | None = None

    def options(self, side: str) -> list[str]:
        """`side`: `src` or `dest` (skopeo's option prefixes)."""
        if not self.verify:
            return [f"--{side}-tls-verify=false"]
        return [] if self.cert_dir is None else [f"--{side}-cert-dir", str(self.cert_dir)]


# buildah's isolation. Not `chroot`: buildah 1.28's chroot runtime exits with the step's
# status before its relay has copied the step's last output, so a busy machine loses the
# end of a quick step's log; under runc, buildah copies every byte before it returns.
# `--network host` keeps the step in the namespace `Workspace.network` made for it.
ISOLATION = ("--isolation", "oci", "--network", "host")


@dataclass(frozen=True)
class Workspace:
    """A run's own directory: its context, its image storage, its configuration."""

    root: Path
    driver: str  # vfs or overlay
    # What a step runs behind: by default a network namespace with nothing but a
    # loopback device; `registry_network.step_prefix` for the registry only; () for the
    # server's own network.
    network: tuple[str, ...] = ("unshare", "--net", "--")
    # buildah's `--add-host NAME:IP` for the build (the registry's name on loopback).
    hosts: tuple[str, ...] = ()
    # Told apart from the run's other storages (one per platform of a multi-platform
    # build, since each holds its own platform's base under the same name).
    store: str = ""

    @property
    def context(self) -> Path:
        return self.root / "context"

    @property
    def storage(self) -> str:
        """containers-storage's `[driver@root+runroot]` for skopeo."""
        return f"[{self.driver}@{self._storage_root}+{self._run_root}]"

    @property
    def _storage_root(self) -> Path:
        return self.root / f"storage{self.store}"

    @property
    def _run_root(self) -> Path:
        return self.root / f"runroot{self.store}"

    def prepare(self) -> None:
        for directory in (self.context, self.root / "tmp", self._storage_root):
            directory.mkdir(parents=True, exist_ok=True)
        (self.root / "policy.json").write_text(_POLICY)
        (self.root / "registries.conf").write_text(_REGISTRIES)

    def environment(self, path: str) -> dict[str, str]:
        """The tools' whole environment: nothing of the server's (its settings, secrets)."""
        return {
            "PATH": path,
            "HOME": str(self.root),
            "TMPDIR": str(self.root / "tmp"),
            "BUILDAH_ISOLATION": "oci",
            "CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf"),
            "CONTAINERS_POLICY": str(self.root / "policy.json"),
        }

    def buildah(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self._storage_root),
            "--runroot",
            str(self._run_root),
            "--storage-driver",
            self.driver,
            *args,
        ]

    def pull(
        self, image: str, token: str | None, tls: Tls | None, platform: list[str] | None = None
    ) -> list[str]:
        """skopeo copying a base image into the run's storage, under its full name;
        `platform`: skopeo's options choosing a platform (`Platform.skopeo_options`)."""
        auth = [] if token is None else ["--src-registry-token", token]
        return [
            "skopeo",
            *(platform or []),
            "copy",
            "--quiet",
            "--policy",
            str(self.root / "policy.json"),
            *auth,
            *(tls.options("src") if tls else []),
            f"docker://{image}",
            f"containers-storage:{self.storage}{image}",
        ]

    def push(self, image: str, token: str, tls: Tls, digest_file: Path) -> list[str]:
        return [
            "skopeo",
            "copy",
            "--quiet",
            "--policy",
            str(self.root / "policy.json"),
            "--dest-registry-token",
            token,
            *tls.options("dest"),
            "--digestfile",
            str(digest_file),
            f"containers-storage:{self.storage}{image}",
            f"docker://{image}",
        ]

    def build(
        self,
        dockerfile: Path,
        tags: list[str],
        arguments: list[str],
        target: str | None,
        no_cache: bool,
        context: Path | None = None,
        platform: str | None = None,
    ) -> list[str]:
        """`buildah build` behind `network`; `arguments`: NAME=VALUE, or NAME alone for a
        value buildah takes from the environment (secrets); `context`: a directory of the
        run's context (all of it by default)."""
        return [
            *self.network,
            *self.buildah(
                "build",
                *ISOLATION,
                "--pull=never",
                "--signature-policy",
                str(self.root / "policy.json"),
                "--file",
                str(dockerfile),
                *[option for tag in tags for option in ("--tag", tag)],
                *[option for argument in arguments for option in ("--build-arg", argument)],
                *(["--target", target] if target else []),
                *(["--no-cache"] if no_cache else []),
                *(["--platform", platform] if platform else []),
                *[option for host in self.hosts for option in ("--add-host", host)],
                str(context or self.context),
            ),
        ]

    def export(self, image: str, layout: Path, name: str) -> list[str]:
        """skopeo copying a built image into an OCI layout (one per run), as `name`."""
        return [
            "skopeo",
            "copy",
            "--quiet",
            "--policy",
            str(self.root / "policy.json"),
            f"containers-storage:{self.storage}{image}",
            f"oci:{layout}:{name}",
        ]

    def push_index(
        self, layout: Path, name: str, image: str, token: str, tls: Tls, digest_file: Path
    ) -> list[str]:
        """skopeo pushing the index `name` of the OCI layout with every image it lists."""
        return [
            "skopeo",
            "copy",
            "--all",
            "--quiet",
            "--policy",
            str(self.root / "policy.json"),
            "--dest-registry-token",
            token,
            *tls.options("dest"),
            "--digestfile",
            str(digest_file),
            f"oci:{layout}:{name}",
            f"docker://{image}",
        ]

    def container(self, image: str, name: str) -> list[str]:
        """A working container of `image` (pulled already) for a `cmd` step."""
        return self.buildah(
            "from",
            "--pull=never",
            "--signature-policy",
            str(self.root / "policy.json"),
            "--name",
            name,
            image,
        )

    def image_config(self, image: str) -> list[str]:
        """Prints what buildah knows of the image as JSON (its OCI config, with the
        Entrypoint and Cmd, under `OCIv1.config`); fails when the run's storage has no
        such image. (buildah 1.28's --format has no `json` function.)"""
        return self.buildah("inspect", "--type", "image", image)

    def image_architecture(self, image: str) -> list[str]:
        """Prints the architecture the image's config names."""
        return self.buildah(
            "inspect", "--type", "image", "--format", "{{.OCIv1.Architecture}}", image
        )

    def run(self, container: str, argv: list[str], options: Sequence[str] = ()) -> list[str]:
        """`argv` in the container, under runc, behind `network` (as builds);
        `options`: buildah run's own (`--env`, `--workingdir`, `--user`, `--volume`)."""
        return [
            *self.network,
            *self.buildah("run", *ISOLATION, *options, container, "--", *argv),
        ]

    def tag(self, image: str, name: str) -> list[str]:
        return self.buildah("tag", image, name)


def stage_froms(dockerfile: str) -> list[tuple[str, str | None]]:
    """Each stage of the Dockerfile in order: what its FROM names (an image or an
    earlier stage; options such as `--platform` left out) and its own name (`AS`,
    lower-cased), if it has one."""
    found: list[tuple[str, str | None]] = []
    for line in _logical_lines(dockerfile):
        words = line.split()
        if not words or words[0].upper() != "FROM":
            continue
        words = [w for w in words[1:] if not w.startswith("--")]
        if words:
            named = len(words) >= 3 and words[1].upper() == "AS"
            found.append((words[0], words[2].lower() if named else None))
    return found


def has_build_argument(image: str) -> bool:
    """Whether a FROM's image is built from a build argument (`$BASE`, `${BASE}`)."""
    return _ARG.search(image) is not None


def base_images(dockerfile: str) -> list[str]:
    """The images the Dockerfile's stages start FROM, in order, without `scratch`, the
    names of earlier stages, and names with build arguments in them (left to buildah,
    which then finds no such image in the run's storage and says so)."""
    stages: set[str] = set()
    images: list[str] = []
    for image, name in stage_froms(dockerfile):
        if name is not None:
            stages.add(name)
        if image.lower() in stages or image == "scratch" or has_build_argument(image):
            continue
        if image not in images:
            images.append(image)
    return images


def has_run(dockerfile: str) -> bool:
    """Whether a stage of the Dockerfile runs a command (and so runs the platform's
    binaries: another architecture's need an emulator)."""
    return any(
        line.split(maxsplit=1)[0].upper() == "RUN" for line in _logical_lines(dockerfile) if line
    )


def _logical_lines(text: str) -> list[str]:
    """Lines with `\\` continuations joined and comments dropped."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def full_name(image: str) -> str:
    """A reference as containers-storage keeps it: `docker.io/library/` before a short
    name, `:latest` when no tag or digest."""
    first, _, rest = image.partition("/")
    if not rest or not ("." in first or ":" in first or first == "localhost"):
        image = f"docker.io/{image}" if rest else f"docker.io/library/{image}"
    last = image.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        image += ":latest"
    return image
