"""Manifest pulls through the pull-through cache.

A manifest found locally is served as any pull is, without contacting the upstream
(also when the upstream is down). One not found, in a repository a cache rule covers,
is imported from the rule's upstream first (`mirroring.imports`: the manifest, every child
of an index and every blob, eagerly, so a stored manifest's blobs all exist), then
served from here. Concurrent first pulls of one reference in a process share one fetch;
across processes they both import, which the import tolerates (same digests, links and
tag: the second changes nothing). An upstream that is down or refuses gives the puller
`UNAVAILABLE` (or `MANIFEST_UNKNOWN` when the upstream has no such tag). An upstream
that is a registry of this server is read as the rule's author, and `DENIED` once the
author may no longer pull from it."""

from __future__ import annotations

import asyncio

from dockyard.common.errors import ManifestUnknown
from dockyard.core.digests import is_digest
from dockyard.core.manifests import Manifests, is_reference
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.mirroring.cache_rules import CacheRules, UpstreamImage
from dockyard.mirroring.imports import ImageReference, Importer


class PullThrough:
    def __init__(self, manifests: Manifests, rules: CacheRules, importer: Importer) -> None:
        self._manifests = manifests
        self._rules = rules
        self._importer = importer
        self._fetching: dict[tuple[int, str, str], asyncio.Task[None]] = {}

    async def manifest(self, registry: RegistryRecord, repo: str, reference: str) -> ManifestRecord:
        """What `Manifests.get` answers, after fetching from upstream on a cache miss."""
        try:
            return self._manifests.get(registry, repo, reference)
        except ManifestUnknown:
            # What no manifest can be stored under is not asked of the upstream either.
            upstream = self._rules.upstream_for(registry, repo) if is_reference(reference) else None
            if upstream is None:
                raise
        key = (registry.id, repo, reference)
        fetch = self._fetching.get(key)
        if fetch is None:
            fetch = asyncio.create_task(self._fetch(registry, repo, reference, upstream))
            self._fetching[key] = fetch
            fetch.add_done_callback(lambda _: self._fetching.pop(key, None))
        # Shielded: a puller that goes away does not cancel the others' fetch.
        await asyncio.shield(fetch)
        return self._manifests.get(registry, repo, reference)

    async def _fetch(
        self, registry: RegistryRecord, repo: str, reference: str, upstream: UpstreamImage
    ) -> None:
        by_digest = is_digest(reference)
        source = ImageReference(
            upstream.host,
            upstream.repository,
            None if by_digest else reference,
            reference if by_digest else None,
        )
        await self._importer.run(
            registry,
            source,
            repo,
            None if by_digest else reference,
            reader=upstream.author,
            credentials=upstream.credentials,
            force=True,  # the tag was missing a moment ago: a concurrent fetch set it
        )
