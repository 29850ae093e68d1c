"""Mirroring as a `Feature`: its services (`Importer`, `CacheRules`, `PullThrough`, on
one `SourceReads`), its verbs, `dockyard import`, `dockyard cache` and
`dockyard credential-set` (all through the management API, which serves its resources
and importImage)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from dockyard.feature import Feature

if TYPE_CHECKING:
    import typer

    from dockyard.services import Services


def _services(services: Services) -> Mapping[str, object]:
    from dockyard.metadata.network import NetworkStore
    from dockyard.mirroring.cache_rules import CacheRules
    from dockyard.mirroring.imports import Importer, SourceReads
    from dockyard.mirroring.pull_through import PullThrough

    settings, meta = services.settings, services.meta
    _, _, port = settings.server.listen.rpartition(":")
    reads = SourceReads(
        services.registries,
        services.authenticator if settings.auth.enabled else None,
        NetworkStore(meta),
        int(port) if port.isdigit() else None,
    )
    importer = Importer(
        meta,
        reads,
        services.blobs,
        services.uploads,
        services.manifests,
        settings.upstream.insecure_hosts,
    )
    cache_rules = CacheRules(meta, services.box, reads)
    return {
        "importer": importer,
        "cache_rules": cache_rules,
        "pull_through": PullThrough(services.manifests, cache_rules, importer),
    }


def _cli(app: typer.Typer) -> None:
    from dockyard.cli import cache, imports

    cache.register(app)
    imports.register(app)


MIRRORING = Feature("mirroring", services=_services, cli=_cli)
