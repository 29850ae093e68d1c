"""Import: copying an image, every platform of an index, into a repository, as ACR's
`az acr import` does: from another registry (any OCI registry, over `mirroring.upstream`),
from another repository of the same registry, or from another registry of this server.

Nothing is moved twice. Within one registry blobs are mounted (a link row, no byte
moves); a blob the target registry already stores is linked; only blobs it lacks are
copied, streamed store-to-store from another registry of this server or from the
upstream over HTTP, through `Uploads.upload_whole`, which verifies each digest. Manifests
are stored children first, each through `Manifests.put`, so the locks, the reference
check and the push event in the outbox are exactly a push's. A tag that names another
manifest is moved only when forced (ACR's `--force`).

A source that is a registry of this server is read locally, and only as its reader may
(`SourceReads`): the caller of importImage, or a cache rule's author. Which registry the
source names is decided once, on the one spelling of its host (`names.registry_host`),
by the same call that the check and the copy use."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from dockyard.auth.network import refusal
from dockyard.auth.permissions import READ, Grants
from dockyard.auth.principals import ANONYMOUS, AuthenticationFailed, Authenticator, Principal
from dockyard.common.errors import (
    BlobUnknown,
    Denied,
    ManifestInvalid,
    NameInvalid,
    RegistryHostInvalid,
    TagExists,
)
from dockyard.common.names import check_repository_name, check_tag, registry_host
from dockyard.core.blobs import Blobs
from dockyard.core.digests import parse_digest
from dockyard.core.manifest_formats import Descriptor, Manifest, parse_manifest
from dockyard.core.manifests import Manifests
from dockyard.core.registries import Registries
from dockyard.core.uploads import Uploads
from dockyard.metadata.network import NetworkStore
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.mirroring.upstream import Credentials, FetchedManifest, Upstream

# ACR copies at most this many manifests (an index and its children) per import.
MAX_MANIFESTS = 50
_CHUNK = 1 << 20
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class ImageReference:
    """`[REGISTRY/]REPOSITORY[:TAG|@DIGEST]`; `registry` None means the registry the
    image is imported into."""

    registry: str | None
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        return f"{name}@{self.digest}" if self.digest else f"{name}:{self.reference}"


def parse_image(text: str, default_tag: str | None = "latest") -> ImageReference:
    """Read an image name as docker does: the first path component is a registry when it
    looks like a host (a dot, a port, or `localhost`); a digest wins over a tag; Docker
    Hub's official images live under `library/`."""
    text = text.strip()
    first, slash, remainder = text.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image_at(registry_host(first), remainder, default_tag)
    return image_at(None, text, default_tag)


def image_at(registry: str | None, text: str, default_tag: str | None = "latest") -> ImageReference:
    """`REPOSITORY[:TAG|@DIGEST]` at `registry` (in `names.registry_host`'s spelling;
    None: the registry imported into)."""
    rest, _, digest = text.partition("@")
    repository, tag = rest, None
    colon = rest.rfind(":")
    if colon != -1 and "/" not in rest[colon:]:
        repository, tag = rest[:colon], rest[colon + 1 :]
    if registry in _DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    check_repository_name(repository)
    if digest:
        parse_digest(digest)
        tag = None
    elif tag is not None:
        check_tag(tag)
    else:
        tag = default_tag
    return ImageReference(registry, repository, tag, digest or None)


def parse_registry_uri(text: str, image: str) -> ImageReference:
    """importImage's `registryUri` (`[https://|http://]HOST[:PORT][/PATH]`, a path being a
    prefix of the repository) and `sourceImage`, as one image; anything else is refused."""
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "https", text
    host, _, path = rest.partition("/")
    path = path.removesuffix("/")
    try:
        if scheme.lower() not in ("http", "https"):
            raise RegistryHostInvalid(f"{scheme!r} is no scheme of a registry")
        registry = registry_host(host)
        if path:
            check_repository_name(path)
    except (RegistryHostInvalid, NameInvalid) as exc:
        raise RegistryHostInvalid(
            f"registryUri {text!r} is not [https://]HOST[:PORT][/PATH]: {exc.message}"
        ) from None
    return image_at(registry, f"{path}/{image}" if path else image)


@dataclass(frozen=True)
class Reader:
    """Who an import reads a registry of this server as: an identity (its id; None: the
    anonymous caller), and the address it calls from (None: no network rule applies,
    as for the pulls through a cache rule, which come from the rule, not a caller)."""

    identity: str | None
    address: str | None = None


class SourceReadDenied(Denied):
    """The reader of an import may not read its source, a registry of this server."""


class SourceReads:
    """Which registry of this server an import's source is, and whether its reader may
    read it: a pull right on the repository (the identity's roles, or anonymous pull),
    from an address the registry's network rules let in."""

    def __init__(
        self,
        registries: Registries,
        authenticator: Authenticator | None,
        network: NetworkStore,
        listen_port: int | None = None,
    ) -> None:
        """`authenticator` None: authentication is off, anyone may pull anything (the
        network rules still apply). `listen_port`: the port this server listens on."""
        self._registries = registries
        self._authenticator = authenticator
        self._network = network
        self._listen_port = listen_port

    def local(self, host: str | None, target: RegistryRecord) -> RegistryRecord | None:
        """The registry of this server that `host` (in `names.registry_host`'s spelling)
        is, if any; no host is `target`, the registry imported into. Besides its login
        servers, this machine's own names with the listen port (`localhost`, a loopback
        or the unspecified address) are this server: over HTTP they would reach the
        registry its Host picks, from this server's own address, past the network rules
        the caller's address meets."""
        if host is None:
            return target
        found = self._registries.serving(host)
        if found is None and _port_of(host) == self._listen_port and _this_machine(host):
            return self._registries.for_host(host)
        return found

    def require(
        self, registry: RegistryRecord, repository: str, reader: Reader, prefix: bool = False
    ) -> None:
        """Refuse unless `reader` may pull `repository` of `registry` (`prefix`: every
        repository under it; '' is all of them)."""
        if reader.address is not None:
            message = refusal(
                self._network.policies().get(registry.id), registry.name, reader.address
            )
            if message is not None:
                raise SourceReadDenied(message)
        if self._authenticator is None:
            return
        grants = self._grants(registry, reader)
        if not any(
            g.allows_under(repository, READ) if prefix else g.allows(repository, READ)
            for g in grants
        ):
            who = "the anonymous caller" if reader.identity is None else reader.identity
            what = f"{repository}/*" if prefix and repository else ("*" if prefix else repository)
            raise SourceReadDenied(
                f"{who} may not pull {what} from {registry.login_server}: an import from a "
                "registry of this server needs a pull right there (AcrPull, Reader, ...)"
            )

    def _grants(self, registry: RegistryRecord, reader: Reader) -> list[Grants]:
        """The reader's grants and the anonymous caller's: what anyone may pull, so may
        the reader."""
        assert self._authenticator is not None
        anonymous = Principal(ANONYMOUS, ANONYMOUS, ANONYMOUS)
        found = [self._authenticator.grants(registry, anonymous)]
        if reader.identity is not None:
            try:
                principal = self._authenticator.principal(registry, f"identity:{reader.identity}")
            except AuthenticationFailed:
                return found
            found.append(self._authenticator.grants(registry, principal))
        return found


class Progress(Protocol):
    """What an import reports as it goes (importImage's operation shows it to its
    pollers, and `dockyard import` draws a bar in bytes from that)."""

    def planned(self, size: int) -> None:
        """`size` bytes will be copied: the blobs the target registry lacks."""

    def moved(self, size: int) -> None:
        """`size` more bytes were copied."""


class _Quiet:
    def planned(self, size: int) -> None:
        pass

    def moved(self, size: int) -> None:
        pass


@dataclass(frozen=True)
class ImportResult:
    digest: str
    media_type: str
    manifests: int
    blobs_copied: int
    bytes_copied: int
    blobs_linked: int  # mounted or linked: no byte moved


class _Source(Protocol):
    repository: str
    registry: RegistryRecord | None  # set when the source is a registry of this server

    async def manifest(self, reference: str) -> FetchedManifest: ...

    def blob(self, digest: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...


class _LocalSource:
    """A repository of a registry of this server, read as a pull would (locks apply)."""

    def __init__(
        self, manifests: Manifests, blobs: Blobs, registry: RegistryRecord, repository: str
    ) -> None:
        self._manifests, self._blobs = manifests, blobs
        self.registry, self.repository = registry, repository

    async def manifest(self, reference: str) -> FetchedManifest:
        record = self._manifests.get(self.registry, self.repository, reference)
        return FetchedManifest(record.digest, record.media_type, record.body)

    @asynccontextmanager
    async def blob(self, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        location = self._blobs.locate(self.registry, self.repository, digest)
        with await location.open() as source:

            async def chunks() -> AsyncIterator[bytes]:
                while chunk := await location.read(source, _CHUNK):
                    yield chunk

            yield chunks()


class _RemoteSource:
    registry = None

    def __init__(self, upstream: Upstream, repository: str) -> None:
        self._upstream, self.repository = upstream, repository

    async def manifest(self, reference: str) -> FetchedManifest:
        return await self._upstream.manifest(self.repository, reference)

    def blob(self, digest: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        return self._upstream.blob(self.repository, digest)


async def _counted(chunks: AsyncIterator[bytes], progress: Progress) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        progress.moved(len(chunk))
        yield chunk


def _port_of(host: str) -> int:
    """The port of `HOST[:PORT]`; HTTPS's when none is given."""
    tail = host.rsplit("]", 1)[-1]
    return int(tail.rsplit(":", 1)[1]) if ":" in tail else 443


def _this_machine(host: str) -> bool:
    """Whether `host` names this machine: `localhost`, a loopback address, or the
    unspecified one (`0.0.0.0`, `[::]`), which a connection takes to this machine."""
    name = host[1 : host.index("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return name == "localhost"
    return address.is_loopback or address.is_unspecified


class Importer:
    def __init__(
        self,
        meta: Metadata,
        reads: SourceReads,
        blobs: Blobs,
        uploads: Uploads,
        manifests: Manifests,
        insecure_hosts: Iterable[str] = (),
    ) -> None:
        self._meta = meta
        self._reads = reads
        self._blobs = blobs
        self._uploads = uploads
        self._manifests = manifests
        self._insecure = frozenset(host.lower() for host in insecure_hosts)

    async def run(
        self,
        registry: RegistryRecord,
        source: ImageReference,
        repository: str,
        tag: str | None,
        *,
        reader: Reader,
        credentials: Credentials | None = None,
        force: bool = False,
        insecure: bool = False,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Copy `source` into `repository` of `registry`, under `tag` (or by digest only
        when `tag` is None). A source naming one of this server's login servers (or no
        registry at all) is copied locally, never over HTTP, once `reader` may read it."""
        check_repository_name(repository)
        if tag is not None:
            check_tag(tag)
        progress = progress or _Quiet()
        local = self.check_source(registry, source, reader)
        if local is not None:
            found = _LocalSource(self._manifests, self._blobs, local, source.repository)
            return await self._copy(registry, repository, tag, found, source, force, progress)
        assert source.registry is not None
        plain = insecure or source.registry.lower() in self._insecure
        async with Upstream(source.registry, credentials, plain) as upstream:
            remote = _RemoteSource(upstream, source.repository)
            return await self._copy(registry, repository, tag, remote, source, force, progress)

    def check_source(
        self, registry: RegistryRecord, source: ImageReference, reader: Reader
    ) -> RegistryRecord | None:
        """The registry of this server that `source` names (None: another registry),
        once `reader` may read the source there: what `run` does first, for a caller that
        wants a refusal before it starts the import."""
        local = self._reads.local(source.registry, registry)
        if local is not None:
            self._reads.require(local, source.repository, reader)
        return local

    async def _copy(
        self,
        registry: RegistryRecord,
        repository: str,
        tag: str | None,
        source: _Source,
        image: ImageReference,
        force: bool,
        progress: Progress,
    ) -> ImportResult:
        ordered: list[tuple[FetchedManifest, Manifest]] = []
        await self._collect(source, image.reference, ordered, set())
        top, top_manifest = ordered[-1]
        if tag is not None and not force:
            self._refuse_tag_move(registry, repository, tag, top.digest)
        wanted = {d.digest: d for _, manifest in ordered for d in manifest.blobs}
        missing = [
            d
            for d in wanted.values()
            if self._meta.linked_blob(registry.id, repository, d.digest) is None
        ]
        if source.registry != registry:
            progress.planned(
                sum(d.size for d in missing if self._meta.blob_size(registry.id, d.digest) is None)
            )
        copied = moved = 0
        for descriptor in missing:
            size = await self._place(registry, repository, source, descriptor, progress)
            copied += size is not None
            moved += size or 0
        for fetched, manifest in ordered[:-1]:
            self._manifests.put(
                registry, repository, fetched.digest, fetched.body, manifest.media_type
            )
        self._manifests.put(
            registry,
            repository,
            tag or top.digest,
            top.body,
            top_manifest.media_type,
            move_tag=force,
        )
        return ImportResult(
            top.digest, top_manifest.media_type, len(ordered), copied, moved, len(missing) - copied
        )

    async def _collect(
        self,
        source: _Source,
        reference: str,
        ordered: list[tuple[FetchedManifest, Manifest]],
        seen: set[str],
    ) -> None:
        """Fetch the manifest and, depth first, every child: children come before the
        index that names them, the order they must be stored in."""
        fetched = await source.manifest(reference)
        manifest = parse_manifest(fetched.body, fetched.media_type)
        seen.add(fetched.digest)
        if len(seen) > MAX_MANIFESTS:
            raise ManifestInvalid(f"an import copies at most {MAX_MANIFESTS} manifests")
        for child in manifest.children:
            if child.digest not in seen:
                await self._collect(source, child.digest, ordered, seen)
        ordered.append((fetched, manifest))

    def _refuse_tag_move(
        self, registry: RegistryRecord, repository: str, tag: str, digest: str
    ) -> None:
        """Before any byte moves; `Manifests.put` checks again in its transaction."""
        existing = self._meta.manifest_by_tag(registry.id, repository, tag)
        if existing is not None and existing.digest != digest:
            raise TagExists(
                f"{repository}:{tag} exists (it names {existing.digest}); "
                "import with force to move it",
                detail={"name": repository, "tag": tag, "digest": existing.digest},
            )

    async def _place(
        self,
        registry: RegistryRecord,
        repository: str,
        source: _Source,
        descriptor: Descriptor,
        progress: Progress,
    ) -> int | None:
        """Make the blob visible in the repository: the bytes copied, or None when it
        was mounted or linked (no byte moved)."""
        digest = descriptor.digest
        if source.registry == registry:
            if not self._blobs.mount(registry, repository, digest, source.repository):
                raise BlobUnknown(
                    f"{digest} cannot be read in {source.repository}", detail={"digest": digest}
                )
            return None
        if self._blobs.link_stored(registry, repository, digest):
            return None
        async with source.blob(digest) as chunks:
            await self._uploads.upload_whole(
                registry, repository, digest, _counted(chunks, progress), descriptor.size
            )
        return descriptor.size
