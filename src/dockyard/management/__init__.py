"""The management API, a feature: ARM's resources for registries (placement, create,
update through the owning features, delete: `registry_resources.py`), long-running
operations polled from any node (`operations.py`), and the HTTP side (`api/`: one module
per resource kind, ARM's errors in `api/errors.py`, the custom cloud az discovers in
`api/cloud.py`). It sits above the other features, whose services it serves; core never
imports this package."""
