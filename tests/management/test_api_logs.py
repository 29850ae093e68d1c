"""`registries/{name}/logs` (a Dockyard extension of the management API) in process: with
authentication off, the audit log's rows under ARM's `value`, filtered as asked, and
ARM's error for a bound it cannot read; with it on, who may read them (a control-plane
role that reads the registry) and who may not."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dockyard.app import create_app
from dockyard.management.registry_resources import RegistryChange
from dockyard.services import Services

LOGS = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers/"
    "Microsoft.ContainerRegistry/registries/dockyard/logs"
)


_REGISTRY = {"default_name": "dockyard", "login_server": "localhost:5000"}


@pytest.fixture
def services(make_services) -> Services:
    return make_services(auth={"enabled": False}, registry=_REGISTRY)


@pytest.fixture
def services_with_auth(make_services) -> Services:
    return make_services(auth={"enabled": True}, registry=_REGISTRY)


def test_logs_lists_the_registry_s_audit_rows(services: Services) -> None:
    app = create_app(services, background=False)

    async def session() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            assert (await http.get("/v2/missing/app/manifests/v1")).status_code == 404
            await asyncio.to_thread(services.audit.flush)
            version = {"api-version": "2023-07-01"}
            return [
                await http.get(LOGS, params=version | {"since": "1h", "operation": "Pull"}),
                await http.get(LOGS, params=version | {"result": "success"}),
                await http.get(LOGS, params=version | {"since": "yesterday"}),
            ]

    pulls, successes, refused = asyncio.run(session())
    assert pulls.status_code == 200
    [row] = pulls.json()["value"]
    assert (row["OperationName"], row["Repository"], row["Tag"]) == ("Pull", "missing/app", "v1")
    assert (row["ResultType"], row["CallerIpAddress"]) == ("404", "10.1.2.3")
    assert row["LoginServer"] == "localhost:5000" and row["CorrelationId"]
    assert successes.json()["value"] == []
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "InvalidRequestContent"


def test_logs_need_a_role_that_reads_the_registry(services_with_auth: Services) -> None:
    services = services_with_auth
    admin = services.administration
    registry = services.registries.for_host("")
    other, _ = admin.create_identity("elsewhere")
    other_registry = services.registry_resources.create(
        services.registry_resources.placement_of(registry),
        "otherregistry",
        "westeurope",
        RegistryChange(sku="Basic"),
    ).record
    callers: dict[str, str | None] = {"nobody": None}
    for name, role, on in (
        ("reader", "Reader", registry),
        ("serverreader", "Reader", None),
        ("puller", "AcrPull", registry),  # a data-plane role: not for the management API
        ("elsewhere", "Reader", other_registry),
        ("norole", None, None),
    ):
        identity = other if name == "elsewhere" else admin.create_identity(name)[0]
        if role is not None:
            admin.assign_role(on, identity.id, role)
        token, _ = services.tokens.identity_token(identity.id, "https://management.azure.com")
        callers[name] = token
    app = create_app(services, background=False)

    async def session() -> dict[str, httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            answers = {}
            for name, token in callers.items():
                headers = {} if token is None else {"Authorization": f"Bearer {token}"}
                answers[name] = await http.get(
                    LOGS, params={"api-version": "2023-07-01"}, headers=headers
                )
            return answers

    answers = asyncio.run(session())
    for name in ("reader", "serverreader"):
        assert answers[name].status_code == 200, answers[name].text
        assert "value" in answers[name].json()
    for name in ("puller", "elsewhere", "norole"):
        assert answers[name].status_code == 403, name
        assert answers[name].json()["error"]["code"] == "AuthorizationFailed"
    assert answers["nobody"].status_code == 401
    assert answers["nobody"].json()["error"]["code"] == "AuthenticationFailed"
