"""Who may manage which registry: the management API's (ARM's) authorization.

ARM is authorized by Azure RBAC's control-plane roles, never by the data-plane roles
(AcrPull, AcrPush, ...) nor by the admin user or tokens. Dockyard keeps them the same:

- Owner: read, write, and role assignments;
- Contributor, and Container Registry Contributor and Data Access Configuration
  Administrator: read and write;
- Reader, and Container Registry Configuration Reader and Data Access Configuration
  Reader: read.

An assignment on a registry covers that registry (an assignment limited to some of its
repositories is data-plane only); an assignment with no registry covers the whole
server, as one on a subscription covers its resources in Azure, and is what it takes to
create a registry (`write` at server scope). `control_actions` is pure."""

from __future__ import annotations

from collections.abc import Iterable

from dockyard.metadata.access import AccessStore, RoleAssignmentRecord
from dockyard.metadata.store import Metadata

# The audience of the identity tokens the management API takes (ARM's own).
MANAGEMENT_AUDIENCE = "https://management.azure.com"
READ = "read"
WRITE = "write"
ASSIGN_ROLES = "roleAssignments/write"

CONTROL_ROLES: dict[str, frozenset[str]] = {
    "Owner": frozenset({READ, WRITE, ASSIGN_ROLES}),
    "Contributor": frozenset({READ, WRITE}),
    "Container Registry Contributor and Data Access Configuration Administrator": frozenset(
        {READ, WRITE}
    ),
    "Reader": frozenset({READ}),
    "Container Registry Configuration Reader and Data Access Configuration Reader": frozenset(
        {READ}
    ),
}


def control_actions(
    assignments: Iterable[RoleAssignmentRecord], registry_id: int | None
) -> frozenset[str]:
    """What the assignments allow on a registry (`registry_id` None: at server scope)."""
    allowed: set[str] = set()
    for assignment in assignments:
        if assignment.repository is not None:
            continue
        if assignment.registry_id is None or assignment.registry_id == registry_id:
            allowed |= CONTROL_ROLES.get(assignment.role, frozenset())
    return frozenset(allowed)


class ManagementAccess:
    def __init__(self, meta: Metadata) -> None:
        self._store = AccessStore(meta)

    def actions(self, identity_id: str, registry_id: int | None) -> frozenset[str]:
        return control_actions(self._store.role_assignments(identity_id=identity_id), registry_id)
