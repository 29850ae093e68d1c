"""`registries/{name}/logs` (a Dockyard extension of the management API) in process, with
authentication off: the audit log's rows under ARM's `value`, filtered as asked, and
ARM's error for a bound it cannot read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dockyard.app import create_app
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings

LOGS = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/providers/"
    "Microsoft.ContainerRegistry/registries/dockyard/logs"
)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = load_settings(
        None,
        data_dir=tmp_path,
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    prepare(settings)
    built = build_services(settings)
    yield built
    built.close()


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
