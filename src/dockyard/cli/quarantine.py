"""`dockyard config quarantine update|show`: a registry's quarantine policy (the
registry's `policies.quarantinePolicy`) through the server's management API, beside the
lifecycle policies of `dockyard config` (cli/policies.py). Servers apply it from their
next request; no restart."""

from __future__ import annotations

from typing import Annotated

import typer

from dockyard.cli import policies
from dockyard.cli.management import Management, command
from dockyard.cli.remote import print_json

quarantine = typer.Typer(
    no_args_is_help=True,
    help="The quarantine policy: pushed images are held until a quarantine writer passes them.",
)


@command(quarantine, "show")
def quarantine_show(api: Management, registry: policies.RegistryOption) -> None:
    """Show the quarantine policy."""
    print_json(api.registry(registry)["properties"]["policies"]["quarantinePolicy"])


@command(quarantine, "update")
def quarantine_update(
    api: Management,
    registry: policies.RegistryOption,
    status: Annotated[policies.Status, typer.Option(help="enabled or disabled.")],
) -> None:
    """Turn the quarantine policy on or off.

    While it is on, every image not set Passed by a quarantine writer (PATCH
    /acr/v1/REPO/_manifests/DIGEST with quarantineState) is pulled only by
    AcrQuarantineReader, AcrQuarantineWriter, Owner, Contributor or the admin user.
    """
    body = {"properties": {"policies": {"quarantinePolicy": {"status": status.value}}}}
    answer = api.call("PATCH", api.registry_url(registry), json=body)
    print_json(answer["properties"]["policies"]["quarantinePolicy"])


def register() -> None:
    """Under `dockyard config`, which the lifecycle feature adds to the command."""
    policies.config.add_typer(quarantine, name="quarantine")
