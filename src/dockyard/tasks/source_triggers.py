"""Tasks' source triggers: a git host's push webhook (GitHub's shape: `X-GitHub-Event:
push`, the body signed in `X-Hub-Signature-256` with the trigger's secret) queues a run
of the task for the pushed commit, as ACR's do. Each task has its webhook URL, as on ACR
(`hooks_api.py` serves it); ACR registers it with the git host itself, Dockyard leaves
that to whoever creates the task (docs/tasks.md, "Triggers").

The body must be signed with the `webhookSecret` of one of the task's source triggers:
otherwise nothing is read from it and nothing is queued. A signed push queues one run if
an enabled source trigger whose secret signed it watches that repository (its
`repositoryUrl`, written any usual way) and branch (`branch`; none: every branch) for
`commit` events, and the task is enabled. The run fetches the pushed commit (`after`),
and shows it in `sourceTrigger` and `{{.Run.Commit}}`, `{{.Run.Branch}}`. Never reads
a request: the HTTP side is `hooks_api.py`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from dockyard.common.errors import RequestInvalid
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.metadata.tasks import RunRecord
from dockyard.tasks.definitions import WEBHOOK_SECRET, Tasks, TaskUnknown
from dockyard.tasks.git_contexts import same_repository
from dockyard.tasks.runs import Runs

MAX_BODY_BYTES = 5 * 1024 * 1024  # a push's payload lists its commits; GitHub's stay far below
_NO_COMMIT = "0" * 40

log = logging.getLogger(__name__)


class HookSignatureInvalid(RequestInvalid):
    """The body is not signed with the secret of any of the task's source triggers."""

    code = "Unauthorized"


class HookPayloadInvalid(RequestInvalid):
    code = "InvalidPayload"


@dataclass(frozen=True)
class HookOutcome:
    """What a delivery did: the run queued, or why none was."""

    run: RunRecord | None
    reason: str


class SourceTriggers:
    def __init__(self, meta: Metadata, tasks: Tasks, runs: Runs) -> None:
        self._meta = meta
        self._tasks = tasks
        self._runs = runs

    def delivered(
        self,
        registry_name: str,
        task_name: str,
        event: str,
        signature: str | None,
        delivery: str | None,
        body: bytes,
    ) -> HookOutcome:
        """One webhook delivery to the task's URL."""
        registry = self._registry(registry_name)
        task = self._tasks.get(registry, task_name, secrets=True)
        triggers = [
            trigger
            for trigger in task.properties["trigger"].get("sourceTriggers", [])
            if _signed(body, signature, trigger.get(WEBHOOK_SECRET))
        ]
        if not triggers:
            raise HookSignatureInvalid(
                "the body is not signed (X-Hub-Signature-256) with the secret of any of "
                "the task's source triggers"
            )
        if event == "ping":
            return HookOutcome(None, "pong")
        if event != "push":
            return HookOutcome(None, f"{event or 'an unnamed'} event starts nothing")
        ref, commit, urls = _push(body)
        if not ref.startswith("refs/heads/") or commit == _NO_COMMIT:
            return HookOutcome(None, f"{ref} is no branch pushed to: nothing to build")
        branch = ref.removeprefix("refs/heads/")
        watching = [
            trigger
            for trigger in triggers
            if trigger.get("status") == "Enabled"
            and "commit" in trigger.get("sourceTriggerEvents", ["commit"])
            and _watches(trigger, urls, branch)
        ]
        if not watching:
            return HookOutcome(
                None, f"no enabled source trigger watches {branch} of that repository"
            )
        if task.properties["status"] != "Enabled":
            return HookOutcome(None, f"the task {task_name} is disabled")
        repository = watching[0]["sourceRepository"]
        trigger = {
            "sourceTrigger": {
                "id": delivery or str(uuid.uuid4()),
                "eventType": "commit",
                "commitId": commit,
                "repositoryUrl": repository["repositoryUrl"],
                "branchName": branch,
                "providerType": repository.get("sourceControlType") or "Github",
            }
        }
        run = self._runs.schedule_task(registry, task_name, {}, trigger)
        log.info(
            "source trigger queued a run",
            extra={"fields": {"task": task_name, "run": run.run_id, "commit": commit}},
        )
        return HookOutcome(run, "queued")

    def _registry(self, name: str) -> RegistryRecord:
        for record in self._meta.registries():
            if record.name.lower() == name.lower():
                return record
        raise TaskUnknown(f"no registry named {name!r}")


def sign(body: bytes, secret: str) -> str:
    """`X-Hub-Signature-256` of `body`, as GitHub sends it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _signed(body: bytes, signature: str | None, secret: str | None) -> bool:
    if not signature or not secret:
        return False
    return hmac.compare_digest(sign(body, secret), signature.strip().lower())


def _push(body: bytes) -> tuple[str, str, list[str]]:
    """A push payload's ref, new commit and the repository's URLs; the payload as JSON,
    or as GitHub's form encoding (`payload=<JSON>`, its default content type)."""
    if body.startswith(b"payload="):
        body = parse_qs(body.decode(errors="replace")).get("payload", [""])[0].encode()
    try:
        payload: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise HookPayloadInvalid("the push payload is not JSON") from None
    if not isinstance(payload, dict):
        raise HookPayloadInvalid("the push payload is not a JSON object")
    ref, commit = payload.get("ref"), payload.get("after")
    repository = payload.get("repository")
    if not isinstance(ref, str) or not isinstance(commit, str) or not isinstance(repository, dict):
        raise HookPayloadInvalid("a push payload has ref, after and repository")
    urls = [
        repository[key]
        for key in ("clone_url", "html_url", "url", "git_url", "ssh_url")
        if isinstance(repository.get(key), str)
    ]
    return ref, commit.lower(), urls


def _watches(trigger: dict[str, Any], urls: list[str], branch: str) -> bool:
    repository = trigger.get("sourceRepository") or {}
    watched = repository.get("repositoryUrl") or ""
    if not any(same_repository(watched, url) for url in urls):
        return False
    return repository.get("branch") in (None, "", branch)
