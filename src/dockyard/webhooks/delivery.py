"""Sending webhooks: the POST, its record in the history, and the background delivery
of outbox events.

A POST carries `Content-Type: application/json` (unless a custom header sets another)
and the webhook's custom headers; nothing else but what HTTP needs (Host,
Content-Length), as on ACR. The history keeps each POST with the custom header values
and the URI's password and query values masked, and at most 4 KiB of the answer.

Each enabled webhook is an outbox consumer of its own (`webhook:<id>`) with an ordered
subscription: its registry's events since it was enabled, of the classes its actions
are made from (`payloads.TAKES`), in
order per repository. A delivery that gets no 2xx within the timeout is retried by the
outbox with doubling backoff, without end, so a receiver that is down for an hour gets
every event once it is back, while events of other repositories go on. Each webhook is
served by an asyncio task of its own with non-blocking HTTP: a hanging receiver holds
its own task only, never a push (which only wrote the outbox row) or another webhook.
A notice the receiver has acknowledged (a 2xx in the history) is never sent again, so
the retry of an event that gives several notices sends only those still due.

A webhook located in a peer region (`regional`) sends a notice only once that region
shows its change (holds the pushed manifest, or no longer holds the deleted one); until
then the event is postponed (`Outbox.postpone`), not failed, and nothing is POSTed."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from dockyard.auth.secret_box import SecretBox
from dockyard.common.clock import Clock
from dockyard.core.events import actions, from_row
from dockyard.events import ClaimedEvent, Outbox, Subscription
from dockyard.metadata.webhooks import SentRecord, WebhookRecord, WebhookStore
from dockyard.webhooks import payloads
from dockyard.webhooks.regional import HereOnly, ImageRegions
from dockyard.webhooks.scopes import parse_scope

log = logging.getLogger("dockyard.webhooks")

MASK = "******"
RESPONSE_KEPT = 4096  # bytes of an answer's body kept in the history
HISTORY_KEPT = 1000  # POSTs kept per webhook
BATCH = 20
# The webhook actions that report a manifest's arrival (the rest its removal).
_ARRIVALS = frozenset({"push", "chart_push", "quarantine"})
# Headers httpx adds that ACR does not send (a custom header of the name is kept).
_NOT_SENT = ("accept", "accept-encoding", "connection", "user-agent")


@dataclass(frozen=True)
class Target:
    """Where and how a webhook POSTs: its service URI and custom headers, unsealed."""

    uri: str
    headers: dict[str, str]


def consumer_name(webhook_id: int) -> str:
    return f"webhook:{webhook_id}"


def subscription(webhook: WebhookRecord) -> Subscription:
    return Subscription(
        registry_id=webhook.registry_id,
        after_event_id=webhook.after_event_id,
        actions=actions(kind for a in webhook.actions for kind in payloads.TAKES[a]),
        ordered=True,
    )


def acknowledged(sent: SentRecord) -> bool:
    return sent.response_status is not None and 200 <= sent.response_status < 300


class Sender:
    """POSTs a body for a webhook and records it in the webhook's history."""

    def __init__(self, store: WebhookStore, box: SecretBox, clock: Clock, timeout: float) -> None:
        self.store = store
        self._box = box
        self._clock = clock
        self.timeout = timeout

    def target(self, webhook: WebhookRecord) -> Target:
        headers = (
            self._box.open(webhook.sealed_custom_headers, webhook.registry_id)
            if webhook.sealed_custom_headers
            else "{}"
        )
        return Target(
            self._box.open(webhook.sealed_service_uri, webhook.registry_id), orjson.loads(headers)
        )

    def post(self, webhook: WebhookRecord, action: str, body: dict, attempt: int) -> SentRecord:
        """Send now and wait for the answer (a ping): bounded by the timeout."""
        target = self.target(webhook)
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
            request = _request(client, target, body)
            sent_at, started = self._clock(), time.monotonic()
            try:
                response = client.send(request, stream=True)
                try:
                    answer = _Answer.of(response, _read(response.iter_bytes()))
                finally:
                    response.close()
            except httpx.HTTPError as exc:
                answer = _Answer.failed(exc)
        sent = _sent(target, request, action, body, attempt, sent_at, started, answer)
        self.store.record(webhook.id, sent, HISTORY_KEPT)
        return sent

    async def post_async(
        self,
        client: httpx.AsyncClient,
        webhook: WebhookRecord,
        target: Target,
        action: str,
        body: dict,
        attempt: int,
    ) -> SentRecord:
        """Send from the background worker: the whole exchange is bounded by the
        timeout, however slowly the receiver trickles its answer."""
        request = _request(client, target, body)
        sent_at, started = self._clock(), time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                response = await client.send(request, stream=True)
                try:
                    answer = _Answer.of(response, await _aread(response))
                finally:
                    await response.aclose()
        except (httpx.HTTPError, TimeoutError) as exc:
            answer = _Answer.failed(exc)
        sent = _sent(target, request, action, body, attempt, sent_at, started, answer)
        await asyncio.to_thread(self.store.record, webhook.id, sent, HISTORY_KEPT)
        return sent


def _sent(
    target: Target,
    request: httpx.Request,
    action: str,
    body: dict,
    attempt: int,
    sent_at: datetime,
    started: float,
    answer: _Answer,
) -> SentRecord:
    """What the history keeps of a POST."""
    return SentRecord(
        event_id=str(body["id"]),
        action=action,
        attempt=attempt,
        request_uri=masked_uri(target.uri),
        request_headers=_masked_headers(request.headers, target.headers),
        request_body=request.content.decode(),
        response_status=answer.status,
        response_reason=answer.reason,
        response_headers=answer.headers,
        response_body=answer.body,
        error=answer.error,
        sent_at=sent_at,
        duration_ms=round((time.monotonic() - started) * 1000),
    )


@dataclass(frozen=True)
class _Answer:
    status: int | None
    reason: str | None
    headers: dict[str, str]
    body: str
    error: str | None

    @classmethod
    def of(cls, response: httpx.Response, body: bytes) -> _Answer:
        return cls(
            response.status_code,
            response.reason_phrase,
            dict(list(response.headers.items())[:50]),
            body.decode("utf-8", "replace"),
            None,
        )

    @classmethod
    def failed(cls, exc: Exception) -> _Answer:
        what = "no answer within the timeout" if isinstance(exc, TimeoutError) else str(exc)
        return cls(None, None, {}, "", f"{type(exc).__name__}: {what}"[:1000])


def _request(client: httpx.Client | httpx.AsyncClient, target: Target, body: dict) -> httpx.Request:
    custom = {name.lower() for name in target.headers}
    headers = dict(target.headers)
    if "content-type" not in custom:
        headers["Content-Type"] = "application/json"
    request = client.build_request("POST", target.uri, content=orjson.dumps(body), headers=headers)
    for name in _NOT_SENT:
        if name not in custom and name in request.headers:
            del request.headers[name]
    return request


def _read(chunks) -> bytes:  # type: ignore[no-untyped-def]
    kept = b""
    for chunk in chunks:
        kept += chunk[: RESPONSE_KEPT - len(kept)]
        if len(kept) >= RESPONSE_KEPT:
            break
    return kept


async def _aread(response: httpx.Response) -> bytes:
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk[: RESPONSE_KEPT - len(kept)]
        if len(kept) >= RESPONSE_KEPT:
            break
    return kept


def masked_uri(uri: str) -> str:
    """The service URI as the history shows it: no password, no query values."""
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:{MASK}@{host}" if ":" in user else netloc
    query = urlencode(
        [(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _masked_headers(sent: httpx.Headers, custom: dict[str, str]) -> dict[str, str]:
    secret = {name.lower() for name in custom} - {"content-type"}
    return {name: MASK if name.lower() in secret else value for name, value in sent.items()}


class Dispatcher:
    """The background delivery: one task per enabled webhook, started and stopped as
    webhooks are created, enabled, disabled and deleted (looked up every poll, or when
    announced: `events.wakeups`)."""

    def __init__(self, sender: Sender, outbox: Outbox, regions: ImageRegions | None = None) -> None:
        self._sender = sender
        self._store = sender.store
        self._outbox = outbox
        self._regions = regions or HereOnly()

    async def run(self) -> None:
        tasks: dict[int, asyncio.Task[None]] = {}
        idle = self._outbox.wakeups.idle()
        try:
            while True:
                try:
                    wanted = {hook.id for hook in await asyncio.to_thread(self._store.enabled)}
                except Exception:
                    log.exception("webhooks could not be read")
                    wanted = set(tasks)
                ended = [h for h, task in tasks.items() if h not in wanted or task.done()]
                for hook_id in ended:
                    tasks.pop(hook_id).cancel()
                started = wanted - tasks.keys()
                for hook_id in started:
                    tasks[hook_id] = asyncio.create_task(self._serve(hook_id))
                if ended or started:
                    idle.worked()
                await idle.sleep()
        finally:
            for task in tasks.values():
                task.cancel()

    async def _serve(self, hook_id: int) -> None:
        """Deliver one webhook's events until it is disabled or deleted."""
        name = consumer_name(hook_id)
        idle = self._outbox.wakeups.idle()
        async with httpx.AsyncClient(
            timeout=self._sender.timeout, follow_redirects=False
        ) as client:
            while True:
                try:
                    hook = await asyncio.to_thread(self._store.webhook, hook_id)
                    if hook is None or not hook.enabled:
                        return
                    batch = await asyncio.to_thread(
                        self._outbox.claim, name, BATCH, subscription(hook)
                    )
                    for claimed in batch:
                        waiting = await self._not_there_yet(hook, claimed)
                        if waiting is not None:
                            await asyncio.to_thread(self._outbox.postpone, name, claimed, waiting)
                            continue
                        error = await self._deliver(client, hook, claimed)
                        if error is None:
                            await asyncio.to_thread(self._outbox.delivered, name, claimed.event.id)
                        else:
                            await asyncio.to_thread(self._outbox.failed, name, claimed, error)
                except Exception:
                    log.exception("webhook delivery failed", extra={"fields": {"webhook": hook_id}})
                    batch = []
                if batch:
                    idle.worked()
                else:
                    await idle.sleep()

    def _due(self, hook: WebhookRecord, claimed: ClaimedEvent) -> list[payloads.Notice]:
        """The event's notices the webhook wants."""
        scope = parse_scope(hook.scope)
        return [
            notice
            for notice in payloads.notices(from_row(claimed.event))
            if notice.action in hook.actions and scope.matches(notice.repository, notice.tags)
        ]

    async def _not_there_yet(self, hook: WebhookRecord, claimed: ClaimedEvent) -> str | None:
        """For a webhook located in a peer region: why the event must wait (a change of
        its that region does not show yet); None when it may go."""
        location = hook.location
        if location is None or not self._regions.elsewhere(location):
            return None
        for notice in self._due(hook, claimed):
            digest = notice.body["target"]["digest"]
            present = notice.action in _ARRIVALS
            if not await self._regions.reached(
                location, hook.registry_id, notice.repository, digest, present
            ):
                change = "hold" if present else "have deleted"
                return f"waiting for region {location} to {change} {notice.repository}@{digest}"
        return None

    async def _deliver(
        self, client: httpx.AsyncClient, hook: WebhookRecord, claimed: ClaimedEvent
    ) -> str | None:
        """Send the event's notices that the webhook wants and has not acknowledged, in
        order; the first failure stops (the rest wait for the retry). None: all went."""
        due = self._due(hook, claimed)
        done = await asyncio.to_thread(self._store.acknowledged, hook.id, [n.id for n in due])
        target = self._sender.target(hook)
        for notice in due:
            if notice.id in done:
                continue
            sent = await self._sender.post_async(
                client, hook, target, notice.action, notice.body, claimed.attempt
            )
            if not acknowledged(sent):
                log.warning(
                    "webhook not acknowledged",
                    extra={
                        "fields": {
                            "webhook": hook.name,
                            "event": notice.id,
                            "attempt": claimed.attempt,
                            "status": sent.response_status,
                            "error": sent.error,
                        }
                    },
                )
                return sent.error or f"HTTP {sent.response_status}"
        return None
