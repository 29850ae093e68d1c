"""`dockyard webhook create|list|show|update|delete|ping|list-events|get-config`, as
`az acr webhook`: a registry's webhooks, changed in the server's database
(`dockyard.webhooks` decides what is valid). Running servers' background workers pick a
change up within a poll; a ping is sent from here, now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.table import Table

from dockyard.cli.garbage import Output
from dockyard.cli.local import (
    ConfigOption,
    DatabaseOption,
    DataDirOption,
    RegistryOption,
    console,
    fail,
    run_for_registry,
)

if TYPE_CHECKING:
    from dockyard.metadata.records import RegistryRecord
    from dockyard.services import Services
    from dockyard.webhooks.model import Webhook, WebhookEvent

webhook = typer.Typer(
    no_args_is_help=True,
    help="Webhooks: POSTs to a URL when images or charts are pushed or deleted.",
)

NameOption = Annotated[str, typer.Option("--name", "-n", help="Name: 5-50 letters or digits.")]
OutputOption = Annotated[Output, typer.Option("--output", "-o", help="table or json.")]
ActionsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--actions",
        help="push, delete, quarantine, chart_push, chart_delete (repeat, or comma-separate).",
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


def _as_json(hook: Webhook) -> dict[str, Any]:
    """The management API's resource properties (never the URI or the headers)."""
    return {
        "name": hook.name,
        "status": hook.status,
        "scope": hook.scope,
        "actions": list(hook.actions),
        "location": hook.location,
        "tags": hook.tags,
        "createdAt": hook.created_at.isoformat(),
        "updatedAt": hook.updated_at.isoformat(),
    }


def _show(hooks: list[Webhook], output: Output) -> None:
    if output is Output.json:
        typer.echo(orjson.dumps([_as_json(h) for h in hooks]).decode())
        return
    table = Table("name", "status", "actions", "scope", "created")
    for hook in hooks:
        table.add_row(
            hook.name,
            hook.status,
            ", ".join(hook.actions),
            hook.scope,
            f"{hook.created_at:%Y-%m-%d %H:%M:%S}Z",
        )
    console.print(table)


def _show_events(events: list[WebhookEvent], output: Output) -> None:
    if output is Output.json:
        typer.echo(orjson.dumps([e.as_arm() for e in events]).decode())
        return
    table = Table("sent", "event id", "action", "attempt", "status", "ms", "answer")
    for event in events:
        sent = event.sent
        table.add_row(
            f"{sent.sent_at:%Y-%m-%d %H:%M:%S}Z",
            sent.event_id,
            sent.action,
            str(sent.attempt),
            "" if sent.response_status is None else str(sent.response_status),
            str(sent.duration_ms),
            sent.error or sent.response_body[:60],
        )
    console.print(table)


@webhook.command("create")
def create(
    name: NameOption,
    uri: Annotated[str, typer.Option("--uri", help="Service URI the events are POSTed to.")],
    actions: ActionsOption = None,
    headers: HeadersOption = None,
    scope: ScopeOption = None,
    status: StatusOption = None,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Create a webhook: it gets the events that happen from now on."""

    def act(s: Services, registry: RegistryRecord) -> None:
        hook = s.webhooks.create(
            registry,
            name,
            uri,
            _actions(actions) or [],
            custom_headers=_headers(headers),
            scope=scope or "",
            status=status or "enabled",
        )
        _show([hook], output)

    run_for_registry(registry_name, config, data_dir, database_url, act)


@webhook.command("list")
def list_(
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The registry's webhooks."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _show(s.webhooks.list(registry), output),
    )


@webhook.command("show")
def show(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """One webhook (not its URI or headers: see get-config)."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _show([s.webhooks.get(registry, name)], output),
    )


@webhook.command("update")
def update(
    name: NameOption,
    uri: Annotated[str | None, typer.Option("--uri", help="New service URI.")] = None,
    actions: ActionsOption = None,
    headers: HeadersOption = None,
    scope: ScopeOption = None,
    status: StatusOption = None,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Change what is given. A webhook enabled again gets only the events from then on."""

    def act(s: Services, registry: RegistryRecord) -> None:
        hook = s.webhooks.update(
            registry,
            name,
            service_uri=uri,
            custom_headers=_headers(headers),
            actions=_actions(actions),
            scope=scope,
            status=status,
        )
        _show([hook], output)

    run_for_registry(registry_name, config, data_dir, database_url, act)


@webhook.command("delete")
def delete(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
) -> None:
    """Delete a webhook with its history; events not yet delivered are dropped."""

    def act(s: Services, registry: RegistryRecord) -> None:
        s.webhooks.delete(registry, name)
        console.print(f"webhook {name} deleted")

    run_for_registry(registry_name, config, data_dir, database_url, act)


@webhook.command("ping")
def ping(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """POST a ping now and show the answer; it joins the webhook's events."""

    def act(s: Services, registry: RegistryRecord) -> None:
        event = s.webhooks.ping(registry, name)
        if output is Output.json:
            typer.echo(orjson.dumps({"id": event.sent.event_id}).decode())
        else:
            _show_events([event], output)

    run_for_registry(registry_name, config, data_dir, database_url, act)


@webhook.command("list-events")
def list_events(
    name: NameOption,
    top: Annotated[int, typer.Option("--top", help="How many, newest first.")] = 100,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """What the webhook sent and what it was answered (custom header values, the URI's
    password and query values masked)."""
    run_for_registry(
        registry_name,
        config,
        data_dir,
        database_url,
        lambda s, registry: _show_events(s.webhooks.events(registry, name, top), output),
    )


@webhook.command("get-config")
def get_config(
    name: NameOption,
    registry_name: RegistryOption = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    database_url: DatabaseOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The service URI and custom headers, in clear (they may hold credentials)."""

    def act(s: Services, registry: RegistryRecord) -> None:
        callback = s.webhooks.callback_config(registry, name)
        if output is Output.json:
            shown = {"serviceUri": callback.service_uri, "customHeaders": callback.custom_headers}
            typer.echo(orjson.dumps(shown).decode())
            return
        console.print(f"serviceUri: {callback.service_uri}", soft_wrap=True)
        for key, value in callback.custom_headers.items():
            console.print(f"{key}: {value}", soft_wrap=True)

    run_for_registry(registry_name, config, data_dir, database_url, act)


def register(app: typer.Typer) -> None:
    app.add_typer(webhook, name="webhook")
