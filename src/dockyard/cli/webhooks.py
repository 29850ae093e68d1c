"""`dockyard webhook create|list|show|update|delete|ping|list-events|get-config`, as
`az acr webhook`: a registry's webhooks through the server's management API
(cli/management.py). The server's background workers pick a change up within a poll; a
ping is sent by the server, now, and its answer shown."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from dockyard.cli.local import ONLINE, console, fail
from dockyard.cli.management import Management, command, spinner
from dockyard.cli.remote import Output, OutputOption, print_json

webhook = typer.Typer(
    no_args_is_help=True,
    help="Webhooks: POSTs to a URL when images or charts are pushed or deleted (az acr webhook).",
)

NameOption = Annotated[
    str, typer.Option("--name", "-n", help="Webhook name: 5-50 letters or digits.")
]
RegistryOption = Annotated[
    str,
    typer.Option(
        "--registry", "-r", help="Registry name (or its login server).", show_default=False
    ),
]
ActionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--actions",
        help="push, delete, quarantine, chart_push, chart_delete, scan (repeat or comma-separate).",
    ),
]
HeadersOption = Annotated[
    list[str] | None,
    typer.Option("--headers", help="Custom header KEY=VALUE sent with every POST (repeat)."),
]
ScopeOption = Annotated[
    str | None,
    typer.Option(
        "--scope", help="REPO:TAG, REPO:* or REPO (= REPO:latest), * a wildcard; empty: all."
    ),
]
StatusOption = Annotated[str | None, typer.Option("--status", help="enabled or disabled.")]


def _actions(given: list[str] | None) -> list[str] | None:
    if given is None:
        return None
    return [a.strip() for item in given for a in item.split(",") if a.strip()]


def _headers(given: list[str] | None) -> dict[str, str] | None:
    if given is None:
        return None
    headers = {}
    for item in given:
        name, equals, value = item.partition("=")
        if not equals:
            fail(f"--headers {item!r} must be KEY=VALUE")
        headers[name.strip()] = value.strip()
    return headers


def _show(hooks: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(hooks)
        return
    table = Table("NAME", "STATUS", "ACTIONS", "SCOPE", "LOCATION")
    for hook in hooks:
        properties = hook["properties"]
        table.add_row(
            hook["name"],
            properties["status"],
            ", ".join(properties["actions"]),
            properties["scope"],
            hook["location"],
        )
    console.print(table)


def _show_events(events: list[dict[str, Any]], output: Output) -> None:
    if output is Output.json:
        print_json(events)
        return
    table = Table("EVENT ID", "ACTION", "STATUS", "ANSWER")
    for event in events:
        content = event["eventRequestMessage"]["content"]
        answer = event["eventResponseMessage"]
        table.add_row(
            event["id"],
            content.get("action", "") if isinstance(content, dict) else "",
            answer["statusCode"] or "",
            answer["reasonPhrase"] or str(answer["content"])[:60],
        )
    console.print(table)


def _properties(
    uri: str | None,
    actions: list[str] | None,
    headers: list[str] | None,
    scope: str | None,
    status: str | None,
) -> dict[str, Any]:
    given = {
        "serviceUri": uri,
        "actions": _actions(actions),
        "customHeaders": _headers(headers),
        "scope": scope,
        "status": status,
    }
    return {key: value for key, value in given.items() if value is not None}


@command(webhook, "create")
def create(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    uri: Annotated[str, typer.Option("--uri", help="Service URI the events are POSTed to.")],
    actions: ActionsOption = None,
    headers: HeadersOption = None,
    scope: ScopeOption = None,
    status: StatusOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a webhook: it gets the events that happen from now on."""
    if not actions:
        fail("give --actions (push, delete, quarantine, chart_push, chart_delete, scan)")
    body = {
        "location": api.registry(registry)["location"],
        "properties": _properties(uri, actions, headers, scope, status),
    }
    _show([api.create(api.child_url(registry, "webhooks", name), f"webhook {name}", body)], output)


@command(webhook, "list")
def list_(api: Management, registry: RegistryOption, output: OutputOption = Output.table) -> None:
    """The registry's webhooks."""
    _show(api.values(api.child_url(registry, "webhooks")), output)


@command(webhook, "show")
def show(
    api: Management, name: NameOption, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """One webhook (not its URI or headers: see get-config)."""
    _show([api.call("GET", api.child_url(registry, "webhooks", name))], output)


@command(webhook, "update")
def update(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    uri: Annotated[str | None, typer.Option("--uri", help="New service URI.")] = None,
    actions: ActionsOption = None,
    headers: HeadersOption = None,
    scope: ScopeOption = None,
    status: StatusOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Change what is given. A webhook enabled again gets only the events from then on."""
    properties = _properties(uri, actions, headers, scope, status)
    if not properties:
        fail("nothing to change: give --uri, --actions, --headers, --scope or --status")
    hook = api.call(
        "PATCH", api.child_url(registry, "webhooks", name), json={"properties": properties}
    )
    _show([hook], output)


@command(webhook, "delete")
def delete(api: Management, name: NameOption, registry: RegistryOption) -> None:
    """Delete a webhook with its history; events not yet delivered are dropped."""
    api.delete(api.child_url(registry, "webhooks", name))
    console.print(f"webhook {name} deleted")


@command(webhook, "ping")
def ping(
    api: Management, name: NameOption, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """Have the server POST a ping now, and show the answer; it joins the webhook's
    events."""
    url = api.child_url(registry, "webhooks", name)
    with spinner(f"pinging {name}"):
        pinged = api.call("POST", f"{url}/ping")
    if output is Output.json:
        print_json(pinged)
        return
    events = api.values(f"{url}/listEvents", method="POST")
    _show_events([e for e in events if e["id"] == pinged["id"]], output)


@command(webhook, "list-events")
def list_events(
    api: Management,
    name: NameOption,
    registry: RegistryOption,
    top: Annotated[int, typer.Option("--top", min=1, help="How many, newest first.")] = 100,
    output: OutputOption = Output.table,
) -> None:
    """What the webhook sent and what it was answered (custom header values, the URI's
    password and query values masked)."""
    url = api.child_url(registry, "webhooks", name)
    events = api.values(f"{url}/listEvents", method="POST")
    _show_events(events[:top], output)


@command(webhook, "get-config")
def get_config(
    api: Management, name: NameOption, registry: RegistryOption, output: OutputOption = Output.table
) -> None:
    """The service URI and custom headers, in clear (they may hold credentials)."""
    url = api.child_url(registry, "webhooks", name)
    callback = api.call("POST", f"{url}/getCallbackConfig")
    if output is Output.json:
        print_json(callback)
        return
    console.print(f"serviceUri: {callback['serviceUri']}", soft_wrap=True)
    for key, value in (callback.get("customHeaders") or {}).items():
        console.print(f"{key}: {value}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(webhook, name="webhook", rich_help_panel=ONLINE)
