"""`dockyard role assignment create|list|delete`, as `az role assignment`: who may do what
on a registry (or some of its repositories), or on the whole server, through the
management API's `Microsoft.Authorization/roleAssignments` (cli/management.py).
Assigning needs Owner; the first Owner is made on the server
(`dockyard identity create --server-role Owner`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command
from dockyard.cli.remote import Output, OutputOption, print_json

role = typer.Typer(no_args_is_help=True, help="Roles (az role).")
assignment = typer.Typer(
    no_args_is_help=True,
    help="Role assignments: data roles (AcrPull, AcrPush, AcrDelete, ...) and control roles "
    "(Owner, Contributor, Reader) of identities.",
)
role.add_typer(assignment, name="assignment")

RegistryOption = Annotated[
    str | None,
    typer.Option(
        "--registry",
        "-r",
        help="On this registry (name or login server); without it, on the whole server.",
    ),
]
_REPOSITORY_NAME = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]"


def _url(api: Management, registry: str | None) -> str:
    scope = api.registry_url(registry) if registry else f"/subscriptions/{api.subscription}"
    return f"{scope}/providers/Microsoft.Authorization/roleAssignments"


def _condition(repository: str) -> str:
    """ACR's ABAC condition on the repository name: `NAME`, or `PREFIX/*`."""
    if repository.endswith("/*"):
        return f"{_REPOSITORY_NAME} StringStartsWithIgnoreCase '{repository[:-1]}'"
    return f"{_REPOSITORY_NAME} StringEqualsIgnoreCase '{repository}'"


def _show(assignments: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(assignments)
        return
    table = Table("ID", "ASSIGNEE", "ROLE", "REGISTRY", "REPOSITORIES")
    for found in assignments:
        properties = found["properties"]
        condition = properties.get("condition") or ""
        repositories = condition.rpartition(" ")[2].strip("'") if condition else "*"
        if "StartsWith" in condition:
            repositories += "*"
        table.add_row(
            found["name"],
            properties.get("principalName") or properties["principalId"],
            properties.get("roleDefinitionName") or properties["roleDefinitionId"],
            properties["scope"].partition("/registries/")[2] or "(the whole server)",
            repositories,
        )
    console.print(table)


@command(assignment, "create")
def create(
    api: Management,
    assignee: Annotated[
        str, typer.Option("--assignee", help="Identity name or id.", show_default=False)
    ],
    role_name: Annotated[
        str,
        typer.Option(
            "--role",
            help="AcrPull, AcrPush, AcrDelete, AcrImageSigner, Owner, Contributor, Reader, ...",
            show_default=False,
        ),
    ],
    registry: RegistryOption = None,
    repository: Annotated[
        str | None,
        typer.Option(help="Only these repositories of --registry: NAME or PREFIX/*."),
    ] = None,
    output: OutputOption = Output.table,
) -> None:
    """Assign a role to an identity on a registry (or some of its repositories), or on the
    whole server (Owner or Contributor there may also create registries)."""
    properties: dict[str, Any] = {"principalId": assignee, "roleDefinitionId": role_name}
    if repository is not None and repository != "*":
        if registry is None:
            fail("--repository needs --registry: a server-wide role covers every repository")
        properties |= {"condition": _condition(repository), "conditionVersion": "2.0"}
    url = f"{_url(api, registry)}/{uuid.uuid4()}"
    _show([api.call("PUT", url, json={"properties": properties})], output)


@command(assignment, "list")
def list_(
    api: Management, registry: RegistryOption = None, output: OutputOption = Output.table
) -> None:
    """Role assignments on a registry (--registry), or on the whole server."""
    _show(api.values(_url(api, registry)), output)


@command(assignment, "delete")
def delete(
    api: Management,
    assignment_id: Annotated[
        str,
        typer.Option(
            "--id", help="The assignment's id (role assignment list shows it).", show_default=False
        ),
    ],
    registry: RegistryOption = None,
) -> None:
    """Remove a role assignment (on --registry, or on the whole server)."""
    url = f"{_url(api, registry)}/{assignment_id.rsplit('/', 1)[-1]}"
    if api.call("DELETE", url) is None:
        where = f"registry {registry}" if registry else "the server (pass --registry?)"
        fail(f"no role assignment {assignment_id} on {where}")
    console.print(f"role assignment {assignment_id} deleted")


def register(app: typer.Typer) -> None:
    app.add_typer(role, name="role", rich_help_panel=ONLINE)
