"""`auth/logins.py` on services built as the server builds them: a bearer token is
verified once and its caller kept until it expires; Basic credentials are checked once
per address; failed password logins count towards the lockout; an identity token names
its identity, for its audience only."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.auth.logins import CredentialsMalformed, Logins
from dockyard.auth.principals import AuthenticationFailed
from dockyard.auth.tokens import IDENTITY_AUDIENCES, InvalidToken
from dockyard.common.errors import TooManyRequests
from dockyard.metadata.records import RegistryRecord
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings

ADMIN_PASSWORD = "admin-password-for-tests"
ADDRESS = "192.0.2.1"


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(None, data_dir=tmp_path, auth={"max_failed_logins": 2})
    prepare(settings)
    built = build_services(settings)
    built.administration.set_admin_user(_registry(built), True, ADMIN_PASSWORD)
    yield built
    built.close()


def _registry(services: Services) -> RegistryRecord:
    [registry] = services.meta.registries()
    return registry


class Now:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def _logins(services: Services, now: Now) -> tuple[Logins, list[str]]:
    """Logins over the services' collaborators, counting token verifications."""
    verified: list[str] = []
    decode = services.tokens.decode

    def counting(token: str, *args: Any) -> dict[str, Any]:
        verified.append(token)
        return decode(token, *args)

    services.tokens.decode = counting  # type: ignore[method-assign]
    logins = Logins(
        services.meta,
        services.authenticator,
        services.tokens,
        services.login_guard,
        services.external_issuers,
        now,
    )
    return logins, verified


def test_a_bearer_token_is_verified_once_until_it_expires(services: Services) -> None:
    registry, now = _registry(services), Now()
    logins, verified = _logins(services, now)
    access = [{"type": "repository", "name": "app", "actions": ["pull"]}]
    token, claims = services.tokens.access_token(registry.login_server, "admin", access)
    now.value = claims["exp"] - 1
    first = logins.bearer(registry, token)
    assert logins.bearer(registry, token) is first
    assert len(verified) == 1
    assert first.principal is not None and first.principal.subject == "admin"
    assert first.token_access == {("repository", "app"): frozenset({"pull"})}
    now.value = claims["exp"]  # expired by this clock: verified again
    logins.bearer(registry, token)
    assert len(verified) == 2
    with pytest.raises(InvalidToken):
        logins.bearer(registry, token + "x")


def test_basic_credentials_are_checked_once_per_address(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(services)
    logins, _ = _logins(services, Now())
    checks: list[str] = []
    login = services.authenticator.login
    monkeypatch.setattr(
        services.authenticator,
        "login",
        lambda *args: checks.append(args[1]) or login(*args),
    )
    header = base64.b64encode(f"{registry.name}:{ADMIN_PASSWORD}".encode()).decode()
    principal, grants = asyncio.run(logins.basic(registry, header, ADDRESS, "ua"))
    assert principal.kind == "admin" and grants.everything
    assert asyncio.run(logins.basic(registry, header, ADDRESS, "ua")) == (principal, grants)
    asyncio.run(logins.basic(registry, header, "192.0.2.2", "ua"))
    assert checks == [registry.name, registry.name]
    with pytest.raises(CredentialsMalformed):
        asyncio.run(logins.basic(registry, "\xff", ADDRESS, "ua"))


def test_failed_password_logins_lock_the_account_out(services: Services) -> None:
    registry = _registry(services)
    logins, _ = _logins(services, Now())
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            asyncio.run(logins.password(registry, registry.name, "wrong", ADDRESS, "ua"))
    with pytest.raises(TooManyRequests):
        asyncio.run(logins.password(registry, registry.name, ADMIN_PASSWORD, ADDRESS, "ua"))
    # Another address is not locked out.
    asyncio.run(logins.password(registry, registry.name, ADMIN_PASSWORD, "192.0.2.2", "ua"))


def test_an_identity_token_names_its_identity_for_its_audience(services: Services) -> None:
    registry = _registry(services)
    logins, _ = _logins(services, Now())
    identity, _ = services.administration.create_identity("builder")
    token, _ = services.tokens.identity_token(identity.id, IDENTITY_AUDIENCES[1])
    principal = asyncio.run(logins.identity(registry, token, IDENTITY_AUDIENCES))
    assert principal.subject == f"identity:{identity.id}"
    with pytest.raises(AuthenticationFailed):
        asyncio.run(logins.identity(registry, token, "https://elsewhere.example"))
    assert asyncio.run(logins.exchange(registry, token, ADDRESS, "ua")) == principal
    with pytest.raises(AuthenticationFailed):
        asyncio.run(logins.exchange(registry, "not-a-token", ADDRESS, "ua"))
