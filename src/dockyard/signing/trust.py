"""`Trust`: a registry's trust policy and trust stores (set, shown, changed), the
verdict a manifest gets under them, and the pull policy that enforces it
(`check_pull`, asked by core's `Manifests` on every manifest GET).

Costs: a registry's policy and stores are read once and kept `KEEP_SECONDS` in this
process (its own changes forget them at once; another process's reach it within that
time); a verdict is kept in the content read cache under (registry, repository,
digest, policy version): a new signature (a manifest push) empties that cache, a policy
or store change moves the version, and a verdict is worked out again once a certificate
or signature it relied on expires. A warm manifest GET costs two dict look-ups. Once
an unrelated push has emptied that cache, the signatures' checks are still reused while
the same signature manifests are there (one query names them): no envelope is read or
verified again.

What is judged: a manifest by its own signatures; a platform manifest, failing those,
by the signed indexes of the repository that list it (notation signs the index a tag
names); a signature (Notation's, cosign's) is never refused, so clients can read why an
image is refused, nor are cosign's `.att` and `.sbom` attachments (no subject to
follow); any other referrer (an SBOM, a scan report) follows its subject. A
manifest a runtime could run (an index, or one with a filesystem layer) is never
taken for a signature or a referrer: those exemptions cannot carry an image past the
policy."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dockyard.common.clock import Clock
from dockyard.common.errors import ManifestUnknown
from dockyard.core.digests import is_digest
from dockyard.metadata.attributes import SIGNATURE_ARTIFACT_TYPES
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.trust import (
    TrustState,
    TrustStoreRow,
    TrustWrites,
    indexes_holding,
    stored_manifests,
    trust_state,
)
from dockyard.signing.algorithms import PublicKey
from dockyard.signing.certificates import load_certificates, pem, thumbprint
from dockyard.signing.cosign import key_id, load_public_keys
from dockyard.signing.errors import SignatureInvalid, TrustPolicyInvalid, Untrusted
from dockyard.signing.media_types import COSIGN_ATTACHMENTS, SIMPLE_SIGNING
from dockyard.signing.notation import Target
from dockyard.signing.signatures import Signatures
from dockyard.signing.trust_policy import (
    STORE_TYPES,
    Statement,
    TrustPolicy,
    check_stores,
    parse_policy,
)
from dockyard.signing.verification import (
    SignatureCheck,
    TrustMaterial,
    Verdict,
    check_signature,
    judge,
)

log = logging.getLogger("dockyard.signing")

KEEP_SECONDS = 2.0
_SCOPED_KEPT = 10_000
_CHECKS_KEPT = 10_000
_UNSCOPED = object()
# How far a referrer's subject, or an index's parent, is followed.
_MAX_DEPTH = 4


@dataclass(frozen=True)
class RegistryTrust:
    """A registry's trust configuration as the checks use it."""

    enabled: bool
    version: int
    policy: TrustPolicy | None
    material: TrustMaterial
    stores: tuple[TrustStoreRow, ...]
    # Each repository's statement, found once: a pull costs a dict look-up.
    _scoped: dict[str, Statement | None] = field(default_factory=dict, compare=False)

    def statement_for(self, repo: str, login_server: str) -> Statement | None:
        found = self._scoped.get(repo, _UNSCOPED)
        if found is _UNSCOPED:
            assert self.policy is not None
            found = self.policy.for_repository(repo, login_server)
            if len(self._scoped) >= _SCOPED_KEPT:
                self._scoped.clear()
            self._scoped[repo] = found
        return found  # type: ignore[return-value]


@dataclass(frozen=True)
class Refusal:
    """An image the policy refuses (`dockyard trust check`)."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    policy: str
    level: str
    reason: str


@dataclass(frozen=True)
class Inspection:
    """An image's signatures under one statement (`Trust.inspect`)."""

    digest: str
    statement: Statement
    checks: tuple[SignatureCheck, ...]
    verdict: Verdict


def _configuration(state: TrustState) -> RegistryTrust:
    row = state.policy
    policy = None
    if row is not None and row.document is not None:
        try:
            policy = parse_policy(orjson.loads(row.document))
        except (TrustPolicyInvalid, orjson.JSONDecodeError):
            # Stored documents were checked when set; one this version cannot read
            # trusts nothing rather than everything.
            policy = parse_policy({"version": "1.0", "trustPolicies": [_REFUSE_ALL]})
    material = TrustMaterial.parse([(s.type, s.name, s.material) for s in state.stores])
    return RegistryTrust(
        row is not None and row.enabled,
        0 if row is None else row.version,
        policy,
        material,
        state.stores,
    )


_REFUSE_ALL = {
    "name": "unreadable-policy",
    "registryScopes": ["*"],
    "signatureVerification": {"level": "strict"},
    "trustStores": ["cosign:none"],
}


class Trust:
    def __init__(
        self,
        meta: Metadata,
        signatures: Signatures,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._meta = meta
        self._signatures = signatures
        self._clock = clock
        self._monotonic = monotonic
        self._kept: dict[int, tuple[float, RegistryTrust]] = {}
        self._lock = threading.Lock()
        # Pulls refused or let through with a log line since `take_decisions`, by
        # (registry, policy, level, decision): what `/metrics` counts (`signing.metrics`).
        self._decisions: dict[tuple[str, str, str, str], int] = {}
        self._checked: dict[tuple, tuple[SignatureCheck, ...]] = {}

    # -- configuration --------------------------------------------------------------

    def configuration(self, registry_id: int, fresh: bool = False) -> RegistryTrust:
        """The registry's trust configuration, as kept (`KEEP_SECONDS`), or read now
        with `fresh` (what the management API and the CLI show)."""
        kept = self._kept.get(registry_id)
        now = self._monotonic()
        if kept is not None and now < kept[0] and not fresh:
            return kept[1]
        configuration = _configuration(trust_state(self._meta, registry_id))
        with self._lock:
            self._kept[registry_id] = (now + KEEP_SECONDS, configuration)
        return configuration

    def _changed(self, registry_id: int) -> None:
        with self._lock:
            self._kept.pop(registry_id, None)

    def set_policy(
        self, registry: RegistryRecord, document: object, enabled: bool | None = None
    ) -> RegistryTrust:
        """Replace the policy document (None removes it and turns enforcement off);
        `enabled` None keeps the switch as it is."""
        text = None
        if document is not None:
            policy = parse_policy(document)
            text = orjson.dumps(document).decode()
        with self._meta.transaction() as tx:
            writes = TrustWrites(tx)
            if document is not None:
                check_stores(policy, [(s.type, s.name) for s in writes.state(registry.id).stores])
            elif enabled:
                raise TrustPolicyInvalid("set a trust policy document before enabling it")
            writes.set_policy(registry.id, text, False if document is None else enabled)
        self._changed(registry.id)
        return self.configuration(registry.id)

    def set_enabled(self, registry: RegistryRecord, enabled: bool) -> RegistryTrust:
        with self._meta.transaction() as tx:
            writes = TrustWrites(tx)
            row = writes.state(registry.id).policy
            if enabled and (row is None or row.document is None):
                raise TrustPolicyInvalid(
                    "the registry has no trust policy document: set one "
                    "(properties.policies.trustPolicy.document, or `dockyard trust policy set`)"
                )
            if row is not None and row.enabled == enabled:
                return self.configuration(registry.id)
            writes.set_enabled(registry.id, enabled)
        self._changed(registry.id)
        return self.configuration(registry.id)

    def add_store(self, registry: RegistryRecord, kind: str, name: str, material: bytes) -> int:
        """Add certificates (ca, signingAuthority) or public keys (cosign) to a store,
        made if new; returns how many it holds."""
        if kind not in STORE_TYPES:
            raise TrustPolicyInvalid(f"a trust store's type is one of {', '.join(STORE_TYPES)}")
        if not name or "/" in name or ":" in name or len(name) > 128:
            raise TrustPolicyInvalid(f"{name!r} is not a trust store name")
        try:
            if kind == "cosign":
                new = [_key_pem(k) for k in load_public_keys(material)]
            else:
                new = [pem([c]) for c in _ca_certificates(load_certificates(material))]
        except SignatureInvalid as exc:
            raise TrustPolicyInvalid(str(exc)) from None
        with self._meta.transaction() as tx:
            writes = TrustWrites(tx)
            found = {(s.type, s.name): s for s in writes.state(registry.id).stores}.get(
                (kind, name)
            )
            entries = _pem_blocks(found.material) if found is not None else []
            entries += [entry for entry in new if entry not in entries]
            writes.put_store(registry.id, kind, name, "".join(entries))
        self._changed(registry.id)
        return len(entries)

    def remove_store(self, registry: RegistryRecord, kind: str, name: str) -> bool:
        with self._meta.transaction() as tx:
            writes = TrustWrites(tx)
            row = writes.state(registry.id).policy
            if row is not None and row.document is not None:
                policy = parse_policy(orjson.loads(row.document))
                users = [s.name for s in policy.statements if (kind, name) in s.trust_stores]
                if users:
                    raise TrustPolicyInvalid(
                        f"trust policy {users[0]!r} uses {kind}:{name}: change the policy first"
                    )
            gone = writes.delete_store(registry.id, kind, name)
        self._changed(registry.id)
        return gone

    # -- verdicts -------------------------------------------------------------------

    def check_pull(
        self, registry: RegistryRecord, repo: str, reference: str, record: ManifestRecord
    ) -> None:
        configuration = self.configuration(registry.id)
        if not configuration.enabled or configuration.policy is None:
            return
        statement = configuration.statement_for(repo, registry.login_server)
        if statement is None or statement.level == "skip":
            return
        verdict = self.verdict(registry, repo, record, configuration, statement)
        if verdict.logged or not verdict.allowed:
            decision = "refused" if not verdict.allowed else "logged"
            self._count((registry.name, statement.name, statement.level, decision))
        if verdict.logged:
            log.warning(
                "trust policy %r (%s) lets %s@%s through: %s",
                statement.name,
                statement.level,
                repo,
                record.digest,
                verdict.logged[0],
                extra={"fields": {"registry": registry.name, "policy": statement.name}},
            )
        if not verdict.allowed:
            raise Untrusted(
                f"trust policy {statement.name!r} ({statement.level}) refuses "
                f"{repo}@{record.digest}: {verdict.reason}",
                detail={"name": repo, "reference": reference, "policy": statement.name},
            )

    def _count(self, key: tuple[str, str, str, str]) -> None:
        with self._lock:
            self._decisions[key] = self._decisions.get(key, 0) + 1

    def take_decisions(self) -> dict[tuple[str, str, str, str], int]:
        """The counts since the last call, which start again from nothing."""
        with self._lock:
            taken, self._decisions = self._decisions, {}
        return taken

    def verdict(
        self,
        registry: RegistryRecord,
        repo: str,
        record: ManifestRecord,
        configuration: RegistryTrust,
        statement: Statement,
    ) -> Verdict:
        key = ("trust-verdict", registry.id, repo, record.digest, configuration.version)
        kept = self._meta.recall(key)
        if kept is not None and (kept.valid_until is None or self._clock() < kept.valid_until):
            return kept
        verdict = self._judge(registry, repo, record, configuration, statement, 0)
        self._meta.remember(key, verdict)
        return verdict

    def _judge(
        self,
        registry: RegistryRecord,
        repo: str,
        record: ManifestRecord,
        configuration: RegistryTrust,
        statement: Statement,
        depth: int,
    ) -> Verdict:
        doc = orjson.loads(record.body)
        runnable = _is_runnable(doc)
        artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
        if not runnable and (artifact_type in SIGNATURE_ARTIFACT_TYPES or _only_signatures(doc)):
            return Verdict(True, "a signature")
        if not runnable and _only_attachments(doc):
            return Verdict(True, "an attestation or SBOM")
        subject = doc.get("subject")
        if isinstance(subject, dict) and not runnable and depth < _MAX_DEPTH:
            found = self._meta.manifest_by_digest(registry.id, repo, str(subject.get("digest")))
            if found is not None:
                return self._judge(registry, repo, found, configuration, statement, depth + 1)
        verdict = judge(self._checks(registry, repo, record, configuration, statement), statement)
        if (verdict.allowed and not verdict.logged) or depth >= _MAX_DEPTH:
            return verdict
        for digest, _, _ in indexes_holding(self._meta, registry.id, repo, record.digest):
            index = self._meta.manifest_by_digest(registry.id, repo, digest)
            if index is None:
                continue
            through = self._judge(registry, repo, index, configuration, statement, depth + 1)
            if through.allowed and not through.logged:
                return Verdict(
                    True, f"listed by {digest}: {through.reason}", (), through.valid_until
                )
        return verdict

    def _checks(
        self,
        registry: RegistryRecord,
        repo: str,
        record: ManifestRecord,
        configuration: RegistryTrust,
        statement: Statement,
    ) -> tuple[SignatureCheck, ...]:
        """The manifest's signatures checked under `statement`. Kept in this process
        while the same signature manifests are there (a query names them) and no end a
        check relied on has passed: any push empties the read cache that keeps verdicts,
        and checking again would read every envelope from storage and verify it."""
        sources = self._signatures.sources(registry, repo, record.digest)
        key = (registry.id, repo, record.digest, configuration.version, statement.name, sources)
        now = self._clock()
        kept = self._checked.get(key)
        if kept is not None and all(c.valid_until is None or now < c.valid_until for c in kept):
            return kept
        target = Target(record.media_type, record.digest, record.size)
        checks = tuple(
            check_signature(found, target, statement, configuration.material, now)
            for found in self._signatures.find(registry, repo, record.digest)
        )
        with self._lock:
            if len(self._checked) >= _CHECKS_KEPT:
                self._checked.clear()
            self._checked[key] = checks
        return checks

    def inspect(self, registry: RegistryRecord, repo: str, reference: str) -> Inspection:
        """Every signature of the image and how it fares: under the statement the
        registry's policy gives the repository, else (no policy, or none for it) against
        all the registry's stores with any identity, at strict (`dockyard trust
        verify`)."""
        if is_digest(reference):
            record = self._meta.manifest_by_digest(registry.id, repo, reference)
        else:
            record = self._meta.manifest_by_tag(registry.id, repo, reference)
        if record is None:
            raise ManifestUnknown(detail={"name": repo, "reference": reference})
        configuration = self.configuration(registry.id)
        statement = None
        if configuration.policy is not None:
            statement = configuration.policy.for_repository(repo, registry.login_server)
        if statement is None or statement.level == "skip":
            stores = tuple((s.type, s.name) for s in configuration.stores)
            statement = Statement("every trust store", ("*",), "strict", stores, None)
        target = Target(record.media_type, record.digest, record.size)
        now = self._clock()
        checks = tuple(
            check_signature(found, target, statement, configuration.material, now)
            for found in self._signatures.find(registry, repo, record.digest)
        )
        verdict = self._judge(registry, repo, record, configuration, statement, 0)
        return Inspection(record.digest, statement, checks, verdict)

    def refusals(
        self, registry: RegistryRecord, document: object | None = None
    ) -> Iterator[Refusal]:
        """The stored images the registry's policy (or `document`, not stored) would
        refuse at pull, whether or not enforcement is on: `dockyard trust check`."""
        configuration = self.configuration(registry.id)
        policy = configuration.policy if document is None else parse_policy(document)
        if policy is None:
            raise TrustPolicyInvalid("the registry has no trust policy: give one to check")
        for repo, digest, tags in stored_manifests(self._meta, registry.id):
            statement = policy.for_repository(repo, registry.login_server)
            if statement is None or statement.level in ("skip", "audit"):
                continue
            record = self._meta.manifest_by_digest(registry.id, repo, digest)
            if record is None:
                continue
            verdict = self._judge(registry, repo, record, configuration, statement, 0)
            if not verdict.allowed:
                yield Refusal(repo, digest, tags, statement.name, statement.level, verdict.reason)


def _layer_types(doc: dict) -> list[object]:
    layers = doc.get("layers")
    if not isinstance(layers, list):
        return []
    return [layer.get("mediaType") if isinstance(layer, dict) else None for layer in layers]


def _only_signatures(doc: dict) -> bool:
    """cosign's tag scheme: a manifest whose every layer is a simple-signing payload."""
    types = _layer_types(doc)
    return bool(types) and all(t == SIMPLE_SIGNING for t in types)


def _only_attachments(doc: dict) -> bool:
    """cosign's `.att` and `.sbom` tags: every layer an attestation or an SBOM. They name
    no subject to follow, and refusing them would break `cosign verify-attestation`
    and `cosign download sbom` for the signed images they describe."""
    types = _layer_types(doc)
    return bool(types) and all(t in COSIGN_ATTACHMENTS for t in types)


def _is_runnable(doc: dict) -> bool:
    """Whether a runtime could run the manifest (an index, or a filesystem layer; an
    image config alone is not enough: cosign's signature manifests carry one): such a
    manifest is judged by its own signatures even when it calls itself a signature or
    names a subject, so neither is a way around the policy."""
    if "manifests" in doc:
        return True
    return any(isinstance(t, str) and t.startswith(_FILESYSTEM_LAYERS) for t in _layer_types(doc))


_FILESYSTEM_LAYERS = ("application/vnd.oci.image.layer.", "application/vnd.docker.image.rootfs.")


def _ca_certificates(certificates: list[x509.Certificate]) -> list[x509.Certificate]:
    """Trust stores hold CA certificates (roots, as Notation recommends)."""
    for certificate in certificates:
        try:
            ca = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise TrustPolicyInvalid(
                f"{certificate.subject.rfc4514_string()} is not a CA certificate"
            )
    return certificates


def _key_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def _pem_blocks(text: str) -> list[str]:
    blocks, current = [], []
    for line in text.splitlines(keepends=True):
        current.append(line)
        if line.startswith("-----END"):
            blocks.append("".join(current))
            current = []
    return blocks


def store_entries(row: TrustStoreRow) -> list[str]:
    """What a store holds, one line each: a certificate's subject and SHA-256
    thumbprint, or a public key's id."""
    entries = []
    for block in _pem_blocks(row.material):
        if row.type == "cosign":
            entries += [f"key {key_id(k)}" for k in load_public_keys(block.encode())]
        else:
            entries += [
                f"{c.subject.rfc4514_string()} ({thumbprint(c)})"
                for c in load_certificates(block.encode())
            ]
    return entries
