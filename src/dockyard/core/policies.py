"""Pull and push policies: the hook through which a feature refuses to serve or to
store a manifest (quarantine, a trust policy, a vulnerability policy) without core
knowing the feature. `Manifests` asks every policy, after its own checks (names, locks),
before it answers a pull or opens a push's transaction; a policy refuses by raising a
`RegistryError` (usually `Denied`), which every surface answers as it answers core's
own refusals. Policies run on every manifest GET: one must be as cheap as a dict
lookup, or keep what it reads as the read cache does.

Push holds: what a feature answers, before a push's transaction, to say the push is
held from those told of pushes (its event says `held`): quarantine holds the `push`
webhook until a writer passes the image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from dockyard.core.manifest_formats import Manifest
from dockyard.metadata.records import ManifestRecord, RegistryRecord


class PullPolicy(Protocol):
    def check_pull(
        self, registry: RegistryRecord, repo: str, reference: str, record: ManifestRecord
    ) -> None:
        """Raise to refuse serving `record`, asked for as `repo:reference`."""


class PushPolicy(Protocol):
    def check_push(
        self, registry: RegistryRecord, repo: str, reference: str, digest: str, manifest: Manifest
    ) -> None:
        """Raise to refuse storing `manifest` (of `digest`) as `repo:reference`."""


class PushHold(Protocol):
    def holds_push(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        """Whether the push of `digest` into `repo` is held (its event says `held`)."""


@dataclass
class ManifestPolicies:
    """The policies in force. Built empty with `Manifests` and filled once by the
    features (`services.build_services`), since a feature's policy may need the
    services that `Manifests` is one of."""

    pulls: list[PullPolicy] = field(default_factory=list)
    pushes: list[PushPolicy] = field(default_factory=list)
    holds: list[PushHold] = field(default_factory=list)
