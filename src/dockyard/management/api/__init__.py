"""The management API, ARM-shaped (what `azure-mgmt-containerregistry` speaks), under
`/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/`: one
module per resource kind, `arm.py` for what they share. Any other path or method under
`/subscriptions/` and `/providers/` gets ARM's 404 or 405 (`provider.py`), not the
registry API's."""

from __future__ import annotations

from starlette.routing import BaseRoute

from dockyard.management.api import (
    cache_rules,
    identities,
    imports,
    logs,
    provider,
    registries,
    replications,
    role_assignments,
    runs,
    subscriptions,
    task_runs,
    tasks,
    tokens,
    webhooks,
)

_served: list[BaseRoute] = [
    *provider.routes,
    *subscriptions.routes,
    *registries.routes,
    *imports.routes,
    *tokens.routes,
    *role_assignments.routes,
    *webhooks.routes,
    *replications.routes,
    *cache_rules.routes,
    *identities.routes,
    *logs.routes,
    *runs.routes,
    *tasks.routes,
    *task_runs.routes,
]
routes = [*_served, *provider.fallback(_served)]
