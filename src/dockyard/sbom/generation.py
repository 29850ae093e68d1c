"""SBOMs on push: an outbox consumer of `ManifestPushed` that lists the packages of
each image pushed (every platform of an index too) and attaches an SPDX and a
CycloneDX document to it (`attach`).

The consumer runs in a loop of its own (`generate_on_push`, the feature's job) rather
than in the background work's shared outbox loop: reading an image's layers takes
seconds, which would hold up the audit log's delivery behind it. It is idempotent, as
every outbox consumer must be: an image that has Dockyard's SBOM of a format gets no
second one, and a document depends only on the image (its time is the image's push
time), so two events of one image handled at once, by two processes, store the same
bytes, and a redelivered event stores them again, which changes nothing."""

from __future__ import annotations

import asyncio
import gzip
import logging
import tarfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import zstandard

from dockyard.common.errors import RegistryError, Unavailable
from dockyard.core.events import Envelope, ManifestPushed, actions, from_row
from dockyard.core.manifest_formats import IMAGE_TYPES, INDEX_TYPES, Manifest, parse_manifest
from dockyard.events import ClaimedEvent, Subscription
from dockyard.metadata.records import RegistryRecord
from dockyard.sbom.attach import ImageRef, attach, attached
from dockyard.sbom.documents import CYCLONEDX_JSON, SPDX_JSON, Subject, cyclonedx_json, spdx_json
from dockyard.sbom.inventory import layer_packages

if TYPE_CHECKING:
    from dockyard.services import Services

log = logging.getLogger("dockyard.sbom")

SBOM_CONSUMER = "sbom"
# Events claimed at a time: few, as each may take seconds (the claim's lease is 5 min).
BATCH = 5
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
# BuildKit's attestations sit in an image's index as manifests of their own
# (platform unknown/unknown), marked so: not images.
BUILDKIT_REFERENCE_TYPE = "vnd.docker.reference.type"
ATTESTATION = "attestation-manifest"
# The formats stored, each with its document's file name (the layer's title).
FORMATS = (
    (SPDX_JSON, "sbom.spdx.json", spdx_json),
    (CYCLONEDX_JSON, "sbom.cdx.json", cyclonedx_json),
)
# A layer that cannot be read as a tar stream: trying again will not help.
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, zstandard.ZstdError)


@dataclass(frozen=True)
class Outcome:
    """What handling one pushed manifest stored: the referrers' digests."""

    stored: tuple[str, ...] = ()


class SbomGeneration:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._settings = services.settings.sbom
        self.subscription = Subscription(actions=actions((ManifestPushed,)))

    async def run_once(self, limit: int = BATCH) -> int:
        """Claim a batch of push events and handle each; returns how many were claimed.
        A failure is recorded for a retry (with the outbox's backoff), never raised."""
        outbox = self._services.outbox
        batch = await asyncio.to_thread(outbox.claim, SBOM_CONSUMER, limit, self.subscription)
        for claimed in batch:
            try:
                envelope = from_row(claimed.event)
                if isinstance(envelope.event, ManifestPushed):
                    await self.handle(envelope)
            except Exception as exc:
                await self._failed(claimed, exc)
            else:
                await asyncio.to_thread(outbox.delivered, SBOM_CONSUMER, claimed.event.id)
        return len(batch)

    async def handle(self, envelope: Envelope) -> Outcome:
        """Attach the SBOMs the pushed image (or each image of the pushed index) lacks.
        A refusal of the registry's (a lock, the storage quota) or an image whose layers
        are no tar streams is logged and dropped: trying again would not help."""
        event = envelope.event
        assert isinstance(event, ManifestPushed)
        registry = await asyncio.to_thread(self._registry, event.registry_id)
        if registry is None or not self._settings.wanted(registry.name):
            return Outcome()
        try:
            return await self._manifest(registry, event.repository, event.digest)
        except Unavailable:
            raise
        except _UNREADABLE as exc:  # no container image: its layers are no tar streams
            _skipped(logging.INFO, "sbom: layers unreadable", registry, event, exc)
            return Outcome()
        except RegistryError as exc:
            _skipped(logging.WARNING, "sbom: not stored", registry, event, exc)
            return Outcome()

    async def _manifest(self, registry: RegistryRecord, repo: str, digest: str) -> Outcome:
        manifest = await asyncio.to_thread(self._read, registry, repo, digest)
        if manifest is None:
            return Outcome()  # deleted since
        if manifest.media_type in INDEX_TYPES:
            stored: list[str] = []
            for child in manifest.children:
                child_manifest = await asyncio.to_thread(self._read, registry, repo, child.digest)
                if child_manifest is not None:
                    done = await self._image(registry, repo, child.digest, child_manifest)
                    stored.extend(done.stored)
            return Outcome(tuple(stored))
        return await self._image(registry, repo, digest, manifest)

    async def _image(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        manifest: Manifest,
    ) -> Outcome:
        if (
            manifest.media_type not in IMAGE_TYPES
            or manifest.config_media_type not in IMAGE_CONFIGS
            or manifest.subject is not None
            or (manifest.annotations or {}).get(BUILDKIT_REFERENCE_TYPE) == ATTESTATION
        ):
            return Outcome()  # an artifact (an SBOM, a signature, a chart): no packages
        services = self._services
        have = await asyncio.to_thread(attached, services, registry, repo, digest)
        due = [f for f in FORMATS if f[0] not in have]
        if not due:
            return Outcome()
        store = services.stores.for_registry(registry.name)
        packages = await asyncio.to_thread(layer_packages, store, manifest.blobs[1:])
        subject = Subject(registry.login_server, repo, digest)
        image = ImageRef(manifest.media_type, digest, len(manifest.body))
        # The image's push time, not the event's: every event of the image (its push,
        # each tag, its index's), in any process, makes the same documents.
        pushed = await asyncio.to_thread(services.properties.manifest, registry, repo, digest)
        created = _utc(pushed.created_at)
        stored = []
        for artifact_type, title, write in due:
            document = await asyncio.to_thread(write, subject, packages, created)
            stored.append(
                await attach(
                    services,
                    registry,
                    repo,
                    image,
                    artifact_type,
                    title,
                    document,
                    _timestamp(created),
                )
            )
        log.info(
            "sbom: stored",
            extra={
                "fields": {
                    "registry": registry.name,
                    "repository": repo,
                    "digest": digest,
                    "packages": len(packages),
                }
            },
        )
        return Outcome(tuple(stored))

    def _read(self, registry: RegistryRecord, repo: str, digest: str) -> Manifest | None:
        """The stored manifest, read past pull policies (quarantine does not hide an
        image from its own SBOM)."""
        record = self._services.meta.manifest_by_digest(registry.id, repo, digest)
        return None if record is None else parse_manifest(record.body, record.media_type)

    def _registry(self, registry_id: int) -> RegistryRecord | None:
        return next((r for r in self._services.registries.all() if r.id == registry_id), None)

    async def _failed(self, claimed: ClaimedEvent, exc: Exception) -> None:
        log.warning(
            "sbom: event failed",
            extra={
                "fields": {
                    "event": claimed.event.id,
                    "attempt": claimed.attempt,
                    "error": repr(exc),
                }
            },
        )
        await asyncio.to_thread(
            self._services.outbox.failed, SBOM_CONSUMER, claimed, f"{type(exc).__name__}: {exc}"
        )


async def generate_on_push(services: Services) -> None:
    """The feature's job: handle push events as they come, sleeping as the outbox's
    consumers do (`events.wakeups`) when there are none."""
    generation = SbomGeneration(services)
    idle = services.outbox.wakeups.idle()
    while True:
        try:
            claimed = await generation.run_once()
        except Exception:
            log.exception("sbom: outbox claim failed")
            claimed = 0
        if claimed:
            idle.worked()
        else:
            await idle.sleep()


def _skipped(
    level: int, message: str, registry: RegistryRecord, event: ManifestPushed, exc: Exception
) -> None:
    fields = {
        "registry": registry.name,
        "repository": event.repository,
        "digest": event.digest,
        "error": f"{type(exc).__name__}: {exc}",
    }
    log.log(level, message, extra={"fields": fields})


def _utc(moment: datetime) -> datetime:
    """The event's time in UTC (SQLite gives it back without a zone, in UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _timestamp(moment: datetime) -> str:
    return moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
