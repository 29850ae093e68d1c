"""Login throttling and the login audit trail.

Failed logins are counted per account and source address together, in the
`login_failures` table (never in memory), so a lockout holds whichever node a client
reaches. The account is the principal the name resolves to (`Authenticator.account`),
so an identity's client id and name, and every registry's Host, share one count; a
name that resolves to none counts per registry and name. After `max_failed_logins`
failures within `failed_login_window_seconds`, that account is refused from that
address for `lockout_seconds`, without its password even being checked (no oracle for
the guesser, no argon2 work for the server). A success clears the count. Keying on the
pair, not the account alone, means a guesser cannot lock a real user out from
everywhere.

Every attempt becomes a `login_events` row (ACR's ContainerRegistryLoginEvents): time,
identity, method, caller address, result (the HTTP status the client got, as ACR reports
it), a description, the user agent and the request's id. Never the password: no method
here takes one.

How the login code uses it::

    account = authenticator.account(registry, username)
    guard.check(registry.id, username, address, "password", user_agent, account)  # may raise
    if credentials are wrong:
        guard.failed(registry.id, username, address, "password", "wrong", user_agent, account)
        -> answer 401
    else:
        guard.succeeded(registry.id, username, address, "password", user_agent, account)

`check` raises `common.errors.TooManyRequests` (TOOMANYREQUESTS, answered 429) carrying
`retry_after` in whole seconds for the Retry-After header.
"""

from __future__ import annotations

import hashlib
import math
from datetime import timedelta
from enum import StrEnum
from typing import Protocol

from dockyard.common.clock import Clock
from dockyard.common.errors import TooManyRequests
from dockyard.common.request_context import current_request
from dockyard.metadata.logins import LoginEventRecord, LoginStore, LoginWrites
from dockyard.metadata.store import Metadata

_MAX_IDENTITY = 255  # login_events.identity
_MAX_METHOD = 32  # login_events.method
_MAX_ADDRESS = 64  # login_events.caller_ip
UNKNOWN_ADDRESS = "unknown"


class LoginLimits(Protocol):
    """The `[auth]` settings the guard needs."""

    max_failed_logins: int
    failed_login_window_seconds: int
    lockout_seconds: int


class LoginResult(StrEnum):
    """`login_events.result`: the status the client was answered with, as ACR logs it."""

    SUCCEEDED = "200"
    FAILED = "401"
    THROTTLED = "429"


class LoginGuard:
    def __init__(self, meta: Metadata, limits: LoginLimits, clock: Clock) -> None:
        self._meta = meta
        self._store = LoginStore(meta)
        self._clock = clock
        self._limit = limits.max_failed_logins
        self._window = timedelta(seconds=limits.failed_login_window_seconds)
        self._lockout = timedelta(seconds=limits.lockout_seconds)

    def check(
        self,
        registry_id: int,
        identity: str,
        address: str | None,
        method: str = "password",
        user_agent: str | None = None,
        account: str | None = None,
    ) -> None:
        """Refuse (raise `TooManyRequests`) an account locked out from this address, and
        record the refused attempt. Call before checking the credentials."""
        found = self._store.failures(_key(registry_id, identity, address, account))
        if found is None or found.count < self._limit:
            return
        remaining = (found.window_start + self._lockout - self._clock()).total_seconds()
        if remaining <= 0:
            return
        description = f"locked out after {self._limit} failed logins"
        self.record(
            registry_id, identity, address, method, LoginResult.THROTTLED, description, user_agent
        )
        raise TooManyRequests(
            f"too many failed logins for {identity[:_MAX_IDENTITY]!r} from "
            f"{address or UNKNOWN_ADDRESS}; try again in {math.ceil(remaining)} seconds",
            retry_after=math.ceil(remaining),
        )

    def failed(
        self,
        registry_id: int,
        identity: str,
        address: str | None,
        method: str,
        description: str | None = None,
        user_agent: str | None = None,
        account: str | None = None,
    ) -> None:
        """Count a failed attempt and record it. `description` says why (for the audit
        log; it must never contain the secret that was tried)."""
        now = self._clock()
        with self._meta.transaction() as tx:
            writes = LoginWrites(tx)
            writes.count_failure(
                _key(registry_id, identity, address, account),
                now,
                self._limit,
                window_since=now - self._window,
                lock_since=now - self._lockout,
            )
            # Counters of pairs that stopped failing would otherwise stay for ever.
            writes.delete_expired_failures(
                self._limit, window_since=now - self._window, lock_since=now - self._lockout
            )
            writes.add_event(
                registry_id,
                self._event(identity, address, method, LoginResult.FAILED, description, user_agent),
            )

    def succeeded(
        self,
        registry_id: int,
        identity: str,
        address: str | None,
        method: str,
        user_agent: str | None = None,
        account: str | None = None,
    ) -> None:
        """Clear the failure count of this account and address, and record the login."""
        with self._meta.transaction() as tx:
            writes = LoginWrites(tx)
            writes.clear_failures(_key(registry_id, identity, address, account))
            writes.add_event(
                registry_id,
                self._event(identity, address, method, LoginResult.SUCCEEDED, None, user_agent),
            )

    def record(
        self,
        registry_id: int,
        identity: str,
        address: str | None,
        method: str,
        result: LoginResult,
        description: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """Write one login event and nothing else (`failed` and `succeeded` write theirs
        along with the count they change)."""
        with self._meta.transaction() as tx:
            LoginWrites(tx).add_event(
                registry_id, self._event(identity, address, method, result, description, user_agent)
            )

    def _event(
        self,
        identity: str,
        address: str | None,
        method: str,
        result: LoginResult,
        description: str | None,
        user_agent: str | None,
    ) -> LoginEventRecord:
        """The row, clipped to the columns' sizes: the identity is whatever a client sent."""
        request = current_request.get()
        return LoginEventRecord(
            time=self._clock(),
            identity=identity[:_MAX_IDENTITY],
            method=method[:_MAX_METHOD],
            caller_ip=(address or UNKNOWN_ADDRESS)[:_MAX_ADDRESS],
            result=result.value,
            description=description,
            user_agent=user_agent,
            correlation_id=None if request is None else request.id,
        )


def _key(registry_id: int, identity: str, address: str | None, account: str | None) -> str:
    """`login_failures.key`: address and account, or without an account, registry and
    identity (case-folded: `Admin` and `admin` are guesses at the same name). An identity
    too long for the column is kept as its digest, so a flood of long names still counts
    under one key each."""
    where = (address or UNKNOWN_ADDRESS)[:_MAX_ADDRESS]
    if account is not None:
        return f"{where}|{account}"
    name = identity.casefold()
    if len(name) > _MAX_IDENTITY:
        name = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return f"{registry_id}|{where}|{name}"
