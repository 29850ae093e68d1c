"""The default registry's ARM path, as the management tests in process call it."""

SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000"
REGISTRY = (
    f"{SUBSCRIPTION}/resourceGroups/dockyard/providers/Microsoft.ContainerRegistry"
    "/registries/dockyard"
)
VERSION = {"api-version": "2025-11-01"}
