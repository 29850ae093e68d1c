"""The registry's ARM `replications` in process: the home region listed first; a
create in a peer region is long-running (201, `Azure-AsyncOperation`, then the
replication, Failed with the reason when its region does not answer); PATCH changes
tags and `regionEndpointEnabled`; delete is 202 with a `Location`; a region that is no
peer, a second replication in one region, the home region's changes and a tier below
Premium are ARM's errors with nothing stored."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import images
import pytest
from management_paths import REGISTRY, VERSION

from dockyard.app import create_app
from dockyard.services import Services

REPLICATIONS = REGISTRY + "/replications"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        region={
            "name": "westeurope",
            "peers": [{"name": "eastus", "url": f"http://127.0.0.1:{closed_port()}"}],
            "peer_secret": "s3cret-peer",
        },
    )


def in_session(services: Services, work: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    """`work` against the app in one event loop, so an operation it starts runs on."""
    app = create_app(services, background=False)

    async def session() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            await work(http)

    asyncio.run(session())


async def poll(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(200):
        answer = await http.get(url)
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] != "InProgress":
            return answer.json()
        await asyncio.sleep(0.05)
    raise AssertionError("the operation did not finish")


def test_replications_create_list_update_delete(services: Services) -> None:
    async def work(http: httpx.AsyncClient) -> None:
        [home] = (await http.get(REPLICATIONS, params=VERSION)).json()["value"]
        assert (home["name"], home["location"]) == ("westeurope", "westeurope")
        assert home["properties"]["status"]["displayStatus"] == "Ready"

        body = {
            "location": "East US",
            "tags": {"a": "b"},
            "properties": {"regionEndpointEnabled": True, "zoneRedundancy": "Enabled"},
        }
        created = await http.put(REPLICATIONS + "/eastus", params=VERSION, json=body)
        assert created.status_code == 201, created.text
        assert created.json()["properties"]["provisioningState"] == "Creating"
        assert created.json()["properties"]["status"]["displayStatus"] == "Syncing"
        status = await poll(http, created.headers["Azure-AsyncOperation"])
        assert status["status"] == "Succeeded"

        shown = (await http.get(REPLICATIONS + "/eastus", params=VERSION)).json()
        assert shown["location"] == "eastus" and shown["tags"] == {"a": "b"}
        assert shown["properties"]["provisioningState"] == "Succeeded"
        assert shown["properties"]["zoneRedundancy"] == "Enabled"
        # Where a client pins the region: ACR's regional endpoint shape.
        assert shown["properties"]["regionalEndpointHostName"] == "dockyard.eastus.geo.localhost"
        registry = (await http.get(REGISTRY, params=VERSION)).json()["properties"]
        assert registry["regionalEndpoints"] == "Enabled"
        assert registry["regionalEndpointHostNames"] == [
            "dockyard.westeurope.geo.localhost",
            "dockyard.eastus.geo.localhost",
        ]
        shown_status = shown["properties"]["status"]
        assert shown_status["displayStatus"] == "Failed"  # nothing listens at the peer
        assert "did not answer" in shown_status["message"]
        assert shown_status["lastError"] == shown_status["message"]
        assert shown_status["lastErrorTimestamp"] == shown_status["timestamp"]
        assert "s3cret" not in str(shown)

        # A push waits for the region: the backlog counts it, and ages.
        assert shown_status["queueDepth"] == 0 and shown_status["lagSeconds"] == 0
        image = images.busybox_image()
        for digest, data in image.blobs.items():
            started = await http.post("/v2/geo/app/blobs/uploads/")
            put = await http.put(
                started.headers["Location"], params={"digest": digest}, content=data
            )
            assert put.status_code == 201, put.text
        pushed = await http.put(
            "/v2/geo/app/manifests/v1",
            content=image.manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert pushed.status_code == 201, pushed.text
        await asyncio.sleep(0.01)
        waiting = (await http.get(REPLICATIONS + "/eastus", params=VERSION)).json()
        assert waiting["properties"]["status"]["queueDepth"] == 1
        assert waiting["properties"]["status"]["lagSeconds"] > 0
        metrics = (await http.get("/metrics")).text
        assert (
            'dockyard_replication_queue_depth{region="eastus",registry="dockyard"} 1.0' in metrics
        )
        assert 'dockyard_replication_ready{region="eastus",registry="dockyard"} 0.0' in metrics

        patched = await http.patch(
            REPLICATIONS + "/eastus",
            params=VERSION,
            json={"tags": {"c": "d"}, "properties": {"regionEndpointEnabled": False}},
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["tags"] == {"c": "d"}
        assert patched.json()["properties"]["regionEndpointEnabled"] is False
        listed = (await http.get(REPLICATIONS, params=VERSION)).json()["value"]
        assert [r["name"] for r in listed] == ["westeurope", "eastus"]

        deleted = await http.delete(REPLICATIONS + "/eastus", params=VERSION)
        assert deleted.status_code == 202, deleted.text
        for _ in range(200):
            done = await http.get(deleted.headers["Location"])
            if done.status_code != 202:
                break
            await asyncio.sleep(0.05)
        assert done.status_code == 200, done.text
        gone = await http.get(REPLICATIONS + "/eastus", params=VERSION)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "ResourceNotFound"
        again = await http.delete(REPLICATIONS + "/eastus", params=VERSION)
        assert again.status_code == 204
        registry = (await http.get(REGISTRY, params=VERSION)).json()["properties"]
        assert (registry["regionalEndpoints"], registry["regionalEndpointHostNames"]) == (
            "Disabled",
            [],
        )

    in_session(services, work)


def test_what_acr_refuses_is_refused_with_nothing_stored(services: Services) -> None:
    async def work(http: httpx.AsyncClient) -> None:
        async def put(name: str, location: str) -> httpx.Response:
            return await http.put(
                f"{REPLICATIONS}/{name}", params=VERSION, json={"location": location}
            )

        nowhere = await put("northpole", "northpole")
        assert nowhere.status_code == 400
        assert nowhere.json()["error"]["code"] == "LocationNotAvailableForResourceType"
        assert "eastus" in nowhere.json()["error"]["message"]
        home = await put("homeagain", "West Europe")
        assert home.status_code == 400
        short = await put("east", "eastus")
        assert short.status_code == 400
        assert (await put("eastus", "eastus")).status_code == 201
        twice = await put("eastus2", "eastus")
        assert twice.status_code == 400 and "already" in twice.json()["error"]["message"]
        wrong_type = await http.patch(
            REPLICATIONS + "/eastus",
            params=VERSION,
            json={"properties": {"regionEndpointEnabled": "no"}},
        )
        assert wrong_type.status_code == 400
        home_delete = await http.delete(REPLICATIONS + "/westeurope", params=VERSION)
        assert home_delete.status_code == 400
        unknown = await http.patch(REPLICATIONS + "/nothere", params=VERSION, json={})
        assert unknown.status_code == 404
        listed = (await http.get(REPLICATIONS, params=VERSION)).json()["value"]
        assert [r["name"] for r in listed] == ["westeurope", "eastus"]

        # A registry with replications cannot leave Premium; one below cannot add them.
        downgrade = await http.patch(REGISTRY, params=VERSION, json={"sku": {"name": "Standard"}})
        assert downgrade.status_code == 403 and "geo-replication" in downgrade.text
        await http.delete(REPLICATIONS + "/eastus", params=VERSION)
        for _ in range(200):
            if len((await http.get(REPLICATIONS, params=VERSION)).json()["value"]) == 1:
                break
            await asyncio.sleep(0.05)
        downgrade = await http.patch(REGISTRY, params=VERSION, json={"sku": {"name": "Standard"}})
        assert downgrade.status_code == 200, downgrade.text
        refused = await put("eastus", "eastus")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "QuotaExceeded"

    in_session(services, work)
