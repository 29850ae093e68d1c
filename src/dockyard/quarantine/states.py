"""`Quarantine`: a registry's quarantine policy, the state of each manifest under it, the
pull policy that holds quarantined manifests back, the push hold that keeps their
`push` webhook until they pass, and `set_state`, which a quarantine writer (the
`/acr/v1` PATCH, or a scanner inside the server) calls.

A manifest's state is the one a writer set (`Passed`, `Failed`); with none set it is
`Quarantined` while the policy is on, whenever it was pushed: ACR blocks every image not
marked good once the policy is on, and advises scanning what is there before. With the
policy off nothing is held and only states a writer set are shown.

Who may pull what is held: callers with the `quarantinedArtifacts/read` data action
(AcrQuarantineReader, AcrQuarantineWriter, Owner, Contributor, the admin user) and the
registry itself (no caller: the background work). Others are told a tag names nothing
(`MANIFEST_UNKNOWN`) and that a digest's pull is disallowed (`DENIED`), as ACR answers."""

from __future__ import annotations

from dockyard.auth.logins import Logins, current_caller
from dockyard.auth.permissions import QUARANTINE_READ, QUARANTINE_WRITE
from dockyard.common.errors import Denied, ManifestUnknown, RequestInvalid
from dockyard.common.names import check_repository_name
from dockyard.core.digests import is_digest, parse_digest
from dockyard.core.events import QuarantineChanged, request_origin
from dockyard.metadata import quarantine as q
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.metadata.store import Metadata, Transaction
from dockyard.quarantine.details import check_details

QUARANTINED = "Quarantined"
PASSED = "Passed"
FAILED = "Failed"
WRITABLE = (PASSED, FAILED)
DISALLOWED = "The operation is disallowed."


class Quarantine:
    def __init__(self, meta: Metadata, logins: Logins) -> None:
        self._meta = meta
        self._logins = logins

    # -- the policy ---------------------------------------------------------------------

    def enabled(self, registry: RegistryRecord, fresh: bool = False) -> bool:
        """`fresh`: not this request's snapshot but the database now (what the
        management API shows after changing it)."""
        return q.policy_enabled(self._meta, registry.id, fresh)

    def set_enabled(self, registry: RegistryRecord, enabled: bool) -> None:
        """On or off, from the next request of every process (a configuration change)."""
        q.set_policy(self._meta, registry.id, enabled)

    # -- states -------------------------------------------------------------------------

    def attributes(
        self, registry: RegistryRecord, repo: str, digests: list[str]
    ) -> dict[str, dict[str, str]]:
        """What `/acr/v1` adds to the `changeableAttributes` of each of `digests` that has
        a state to show, in ACR's names: `quarantineState`, and `quarantineDetails` when a
        writer sent some (a listing's page: one query)."""
        shown: dict[str, dict[str, str]] = {}
        for digest, stored in q.states_of(self._meta, registry.id, repo, digests).items():
            shown[digest] = {"quarantineState": stored.state}
            if stored.details is not None:
                shown[digest]["quarantineDetails"] = stored.details
        if self.enabled(registry):
            for digest in digests:
                shown.setdefault(digest, {"quarantineState": QUARANTINED})
        return shown

    def passed(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        found = q.state_of(self._meta, registry.id, repo, digest)
        return found is not None and found.state == PASSED

    def set_state(
        self,
        registry: RegistryRecord,
        repo: str,
        digest: str,
        state: object,
        details: object = None,
    ) -> None:
        """Set `repo@digest` `Passed` or `Failed`, with `details` (a quarantine details
        JSON string in ACR's schema: `details.check_details`); an index's child
        manifests take the same state, since a pull reads them by digest. Passing an
        image the policy holds sends its `push` webhook. The caller decided the writer
        may (`check_writer`); a scanner inside the server calls this directly."""
        check_repository_name(repo)
        parse_digest(digest)
        if state not in WRITABLE:
            raise RequestInvalid(
                f"quarantineState must be Passed or Failed, not {state!r}",
                detail={"quarantineState": state},
            )
        assert isinstance(state, str)
        checked = None if details is None else check_details(details)
        held = self.enabled(registry)
        with self._meta.transaction() as tx:
            if write_state(tx, registry, repo, digest, state, checked, held) is None:
                raise ManifestUnknown(detail={"name": repo, "digest": digest})

    def check_writer(self, registry: RegistryRecord, repo: str) -> None:
        """Refuse (`DENIED`) a caller of this request without `quarantinedArtifacts/write`
        on `repo`."""
        caller = current_caller.get()
        if caller is not None and not self._logins.allows(registry, caller, repo, QUARANTINE_WRITE):
            raise Denied(DISALLOWED, detail={"name": repo, "action": QUARANTINE_WRITE})

    # -- the hooks core asks ------------------------------------------------------------

    def check_pull(
        self, registry: RegistryRecord, repo: str, reference: str, record: ManifestRecord
    ) -> None:
        """The pull policy: a dictionary look-up unless the policy is on, two while the
        manifest passed; the caller's grants are read only for what is held."""
        if not q.policy_enabled(self._meta, registry.id):
            return
        if self.passed(registry, repo, record.digest):
            return
        caller = current_caller.get()
        if caller is None or self._logins.allows(registry, caller, repo, QUARANTINE_READ):
            return
        if is_digest(reference):
            raise Denied(DISALLOWED, detail={"name": repo, "reference": reference})
        raise ManifestUnknown(detail={"name": repo, "reference": reference})

    def holds_push(self, registry: RegistryRecord, repo: str, digest: str) -> bool:
        """The push hold: a push into a registry under quarantine, of a manifest not yet
        passed, sends no `push` webhook (only `quarantine`) until it passes."""
        return self.enabled(registry) and not self.passed(registry, repo, digest)


def write_state(
    tx: Transaction,
    registry: RegistryRecord,
    repo: str,
    digest: str,
    state: str,
    details: str | None,
    held: bool,
) -> q.QuarantinedManifest | None:
    """In `tx`: `repo@digest` and its child manifests set to `state`, and, when that
    changed its state, one `QuarantineChanged` per tag naming it (a release when the
    policy `held` it and it passed): a writer's change and a peer region's, alike. The
    manifest as found, or None if there is no such manifest."""
    writes = q.QuarantineWrites(tx)
    found = writes.manifest(registry.id, repo, digest)
    if found is None:
        return None
    previous = writes.set_state(found.id, state, details)
    for child in found.children:
        child_found = writes.manifest(registry.id, repo, child)
        if child_found is not None:
            writes.set_state(child_found.id, state, details)
    if previous != state:
        origin = request_origin()
        for tag in found.tags or (None,):
            changed = QuarantineChanged(
                registry_id=registry.id,
                repository=repo,
                digest=digest,
                size=found.size,
                media_type=found.media_type,
                tag=tag,
                state=state,
                released=held and state == PASSED,
                origin=origin,
            )
            tx.emit(*changed.to_row())
    return found
