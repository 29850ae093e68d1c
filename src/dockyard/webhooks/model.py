"""ACR's webhooks: what one may say, and the operations on them (`Webhooks`, in
`Services`), which the CLI calls now and the management API's `registries/webhooks`
resource (PUT, PATCH, GET, DELETE, ping, listEvents, getCallbackConfig) calls too.

A webhook has a name (5-50 letters and digits), a service URI (http or https), custom
headers, actions (`push`, `delete`, `quarantine`, `chart_push`, `chart_delete`), a scope
(`webhooks.scopes`), a status (`enabled`, `disabled`), and the management API's
location and tags. The URI and the headers may hold credentials, as ACR assumes: they
are sealed with the server's key and shown only by `callback_config`. A registry has at
most its tier's number of webhooks (ACR: Basic 2, Standard 10, Premium 500; counted in
the creating transaction, `tiers.usage.require_room`). A webhook is sent only events that
happen while it is enabled."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from dockyard.auth.secret_box import SecretBox
from dockyard.common.clock import Clock
from dockyard.common.errors import RegistryError, RequestInvalid
from dockyard.events import Outbox
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.webhooks import SentRecord, WebhookRecord, WebhookWrites
from dockyard.tiers.tiers import Counted
from dockyard.tiers.usage import require_room
from dockyard.webhooks import payloads
from dockyard.webhooks.delivery import Sender, consumer_name
from dockyard.webhooks.scopes import ScopeInvalid, parse_scope

STATUSES = ("enabled", "disabled")
_NAME = re.compile(r"^[a-zA-Z0-9]{5,50}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class WebhookInvalid(RequestInvalid):
    """A webhook that cannot be made or changed as asked (name, URI, headers, actions,
    scope, status)."""


class WebhookUnknown(RegistryError):
    code = "ResourceNotFound"
    default_message = "no such webhook"


@dataclass(frozen=True)
class Webhook:
    """A webhook as anyone may see it: never its URI or headers."""

    name: str
    status: str
    scope: str
    actions: tuple[str, ...]
    location: str | None
    tags: dict[str, str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CallbackConfig:
    service_uri: str
    custom_headers: dict[str, str]


@dataclass(frozen=True)
class WebhookEvent:
    """One POST of the history (a listEvents item); `position` pages (`before`)."""

    position: int
    sent: SentRecord

    def as_arm(self) -> dict[str, Any]:
        """ACR's Event: the request as sent (secrets masked) and the answer."""
        sent = self.sent
        try:
            content: Any = orjson.loads(sent.request_body)
        except orjson.JSONDecodeError:
            content = sent.request_body
        return {
            "id": sent.event_id,
            "eventRequestMessage": {
                "content": content,
                "headers": sent.request_headers,
                "method": "POST",
                "requestUri": sent.request_uri,
                "version": "1.1",
            },
            "eventResponseMessage": {
                "content": sent.response_body,
                "headers": sent.response_headers,
                "reasonPhrase": sent.response_reason or sent.error or "",
                "statusCode": None if sent.response_status is None else str(sent.response_status),
                "version": "1.1",
            },
        }


def _shown(record: WebhookRecord) -> Webhook:
    return Webhook(
        name=record.name,
        status="enabled" if record.enabled else "disabled",
        scope=record.scope,
        actions=record.actions,
        location=record.location,
        tags=record.tags,
        created_at=record.created_at,
        updated_at=record.updated_at,
    )


def _check_uri(uri: str) -> str:
    try:
        parts = urlsplit(uri)
        # `port` raises for one that is no number from 0 to 65535; 0 reaches nothing
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # that, or a bracketed host left open
        valid = False
    if not valid:
        raise WebhookInvalid(f"service URI {uri!r} must be an http:// or https:// URL")
    return uri


def _check_actions(actions: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted(set(actions) - set(payloads.ACTIONS))
    if unknown or not actions:
        raise WebhookInvalid(
            f"actions must be one or more of {', '.join(payloads.ACTIONS)}"
            + (f" (not {', '.join(unknown)})" if unknown else "")
        )
    return tuple(a for a in payloads.ACTIONS if a in actions)


def _check_headers(headers: dict[str, str]) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise WebhookInvalid(f"custom header {name!r} is not a valid HTTP header")
    return dict(headers)


def _check_scope(scope: str) -> str:
    try:
        parse_scope(scope)
    except ScopeInvalid as exc:
        raise WebhookInvalid(str(exc)) from None
    return scope


def _enabled(status: str) -> bool:
    if status not in STATUSES:
        raise WebhookInvalid(f"status must be enabled or disabled, not {status!r}")
    return status == "enabled"


class Webhooks:
    def __init__(
        self, meta: Metadata, box: SecretBox, outbox: Outbox, sender: Sender, clock: Clock
    ) -> None:
        self._meta = meta
        self._box = box
        self._outbox = outbox
        self.sender = sender
        self._store = sender.store
        self._clock = clock

    def list(self, registry: RegistryRecord) -> list[Webhook]:
        return [_shown(record) for record in self._store.webhooks(registry.id)]

    def get(self, registry: RegistryRecord, name: str) -> Webhook:
        return _shown(self._record(registry, name))

    def create(
        self,
        registry: RegistryRecord,
        name: str,
        service_uri: str,
        actions: list[str] | tuple[str, ...],
        custom_headers: dict[str, str] | None = None,
        scope: str = "",
        status: str = "enabled",
        location: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Webhook:
        if not _NAME.fullmatch(name):
            raise WebhookInvalid(f"webhook name {name!r} must be 5-50 letters or digits")
        sealed_uri = self._box.seal(_check_uri(service_uri), registry.id)
        sealed_headers = self._seal_headers(registry, custom_headers or {})
        checked = _check_actions(actions), _check_scope(scope), _enabled(status)
        with self._meta.transaction() as tx:
            writes = WebhookWrites(tx)
            existing = writes.webhooks(registry.id)
            if any(hook.name == name for hook in existing):
                raise WebhookInvalid(f"a webhook named {name!r} exists already")
            require_room(tx, registry, Counted.WEBHOOKS)
            writes.add(
                registry.id, name, sealed_uri, sealed_headers, *checked, location, tags or {}
            )
            return _shown(writes.webhooks(registry.id, name)[0])

    def update(
        self,
        registry: RegistryRecord,
        name: str,
        service_uri: str | None = None,
        custom_headers: dict[str, str] | None = None,
        actions: list[str] | tuple[str, ...] | None = None,
        scope: str | None = None,
        status: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Webhook:
        """Change what is given (None: unchanged). Enabling a disabled webhook sends it
        events from now on, none of those that happened while it was disabled."""
        values: dict[str, Any] = {}
        if service_uri is not None:
            values["service_uri"] = self._box.seal(_check_uri(service_uri), registry.id)
        if custom_headers is not None:
            values["custom_headers"] = self._seal_headers(registry, custom_headers)
        if actions is not None:
            values["actions"] = _check_actions(actions)
        if scope is not None:
            values["scope"] = _check_scope(scope)
        if status is not None:
            values["enabled"] = _enabled(status)
        if tags is not None:
            values["tags"] = tags
        with self._meta.transaction() as tx:
            writes = WebhookWrites(tx)
            found = writes.webhooks(registry.id, name)
            if not found:
                raise WebhookUnknown(f"no webhook named {name!r}")
            writes.change(found[0], **values)
            return _shown(writes.webhooks(registry.id, name)[0])

    def delete(self, registry: RegistryRecord, name: str) -> None:
        """The webhook, its history and its place in the outbox."""
        record = self._record(registry, name)
        with self._meta.transaction() as tx:
            WebhookWrites(tx).delete(record.id)
        self._outbox.forget(consumer_name(record.id))

    def callback_config(self, registry: RegistryRecord, name: str) -> CallbackConfig:
        """The service URI and custom headers, unsealed: getCallbackConfig."""
        target = self.sender.target(self._record(registry, name))
        return CallbackConfig(target.uri, target.headers)

    def ping(self, registry: RegistryRecord, name: str) -> WebhookEvent:
        """POST a ping now, whatever the webhook's status, and wait for the answer (at
        most the delivery timeout); it joins the history. Its event id is ACR's
        EventInfo."""
        record = self._record(registry, name)
        body = payloads.ping(str(uuid.uuid4()), self._clock())
        sent = self.sender.post(record, "ping", body, attempt=1)
        latest = self._store.sent(record.id, 1)
        return WebhookEvent(latest[0][0] if latest else 0, sent)

    def events(
        self, registry: RegistryRecord, name: str, limit: int = 100, before: int | None = None
    ) -> list[WebhookEvent]:
        """The webhook's POSTs, newest first (listEvents); `before` pages on from the
        last `position` of a page."""
        record = self._record(registry, name)
        return [WebhookEvent(pos, sent) for pos, sent in self._store.sent(record.id, limit, before)]

    def _record(self, registry: RegistryRecord, name: str) -> WebhookRecord:
        found = self._store.webhooks(registry.id, name)
        if not found:
            raise WebhookUnknown(f"no webhook named {name!r}")
        return found[0]

    def _seal_headers(self, registry: RegistryRecord, headers: dict[str, str]) -> str | None:
        checked = _check_headers(headers)
        return self._box.seal(orjson.dumps(checked).decode(), registry.id) if checked else None
