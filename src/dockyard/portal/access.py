"""What the person signed in to the portal may see and do, decided exactly as the
registry's APIs decide it: the session's principal is looked up again in each registry
(a disabled identity or admin user loses access at once), its grants are the ones a
Basic login would get (`Authenticator.grants`), and every check is `Caller.may` on the
docker scope the matching `/v2` or `/acr/v1` request names (`api.authorization`'s
`repository_scope` and `CATALOG`). A refusal is the same `Denied` those APIs raise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.api.authorization import CATALOG, repository_scope
from dockyard.auth.logins import Caller, current_caller
from dockyard.auth.management import READ as MANAGEMENT_READ
from dockyard.auth.permissions import Scope
from dockyard.auth.principals import AuthenticationFailed
from dockyard.common.errors import Denied
from dockyard.metadata.records import ManifestRecord, RegistryRecord
from dockyard.portal.sessions import Session

if TYPE_CHECKING:
    from dockyard.services import Services


def registry_named(services: Services, name: str) -> RegistryRecord | None:
    wanted = name.lower()
    return next((r for r in services.registries.all() if r.name.lower() == wanted), None)


@dataclass(frozen=True)
class Viewer:
    """The signed-in person, as the APIs see them in one registry."""

    session: Session
    services: Services

    def caller(self, registry: RegistryRecord) -> Caller | None:
        """The caller in `registry`, or None if the principal has no standing there."""
        if self.session.registry_id is not None and self.session.registry_id != registry.id:
            return None  # an admin user is one registry's
        authenticator = self.services.authenticator
        key = ("portal-grants", registry.id, self.session.subject)
        known = self.services.meta.recall(key, config=True)
        if known is None:
            try:
                principal = authenticator.principal(registry, self.session.subject)
            except AuthenticationFailed:
                return None
            known = (principal, authenticator.grants(registry, principal))
            self.services.meta.remember(key, known, config=True)
        principal, grants = known
        return Caller(principal, grants, {})

    def registry(self, name: str) -> RegistryRecord:
        """The registry named, if the viewer has any standing in it: else `Denied`,
        whether or not it exists, as the management API answers."""
        registry = registry_named(self.services, name)
        if registry is None or self.caller(registry) is None:
            raise Denied(f"{self.session.name} may not see registry {name}")
        return registry

    def may(self, registry: RegistryRecord, scope: Scope) -> bool:
        caller = self.caller(registry)
        return caller is not None and caller.may(scope)

    def may_on(self, registry: RegistryRecord, repo: str, words: str) -> bool:
        """Whether the docker scope words (`pull`, `metadata_write`, ...) are allowed on
        the repository; several words separated by `|` mean any one of them."""
        return any(
            self.may(registry, repository_scope(repo, choice)) for choice in words.split("|")
        )

    def require_on(self, registry: RegistryRecord, repo: str, words: str) -> None:
        if not self.may_on(registry, repo, words):
            raise Denied(f"{self.session.name} may not {words} repository {repo}")

    def pull(self, registry: RegistryRecord, repo: str, reference: str) -> ManifestRecord:
        """The manifest as a pull by this viewer gets it: the read locks and every pull
        policy (quarantine, trust, vulnerabilities) asked, with this viewer as the caller
        those policies may let through (`current_caller`). Raises as the pull would."""
        caller = self.caller(registry)
        if caller is None or not caller.may(repository_scope(repo, "pull")):
            raise Denied(f"{self.session.name} may not pull repository {repo}")
        token = current_caller.set(caller)
        try:
            return self.services.manifests.get(registry, repo, reference)
        finally:
            current_caller.reset(token)

    def may_list(self, registry: RegistryRecord) -> bool:
        return self.may(registry, CATALOG)

    def require_list(self, registry: RegistryRecord) -> None:
        if not self.may_list(registry):
            raise Denied(f"{self.session.name} may not list the repositories of {registry.name}")

    def may_manage(self, registry: RegistryRecord, action: str) -> bool:
        """Whether the viewer may do the management API's `action` (`read`, `write`) on
        the registry: an identity's control-plane roles, as ARM decides (the admin user
        and tokens have none, there as here)."""
        if not self.session.subject.startswith("identity:"):
            return False
        if self.caller(registry) is None:
            return False
        identity = self.session.subject.partition(":")[2]
        return action in self.services.management_access.actions(identity, registry.id)

    def require_manage(self, registry: RegistryRecord, action: str) -> None:
        if not self.may_manage(registry, action):
            raise Denied(
                f"{self.session.name} may not {action} the settings of registry {registry.name}"
            )

    def sees(self, registry: RegistryRecord) -> bool:
        """Whether the registry belongs on the registries page: the principal holds some
        data right in it, or may read it through the management API."""
        caller = self.caller(registry)
        if caller is None or caller.grants is None:
            return False
        grants = caller.grants
        if grants.everything or grants.catalog or any(rule.actions for rule in grants.rules):
            return True
        return self.may_manage(registry, MANAGEMENT_READ)
