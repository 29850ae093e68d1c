"""The peer-facing endpoints in process: only a known peer with the shared credential is
answered; blobs and manifests apply once; a tag write applies only if its stamp is later
than that of the tag's value here (a local push included), so a replay or an older write
changes nothing, and a delete is a write like any other; a manifest's delete takes the
tags older than it and keeps the manifest while a later write names it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import images
import pytest
from sqlalchemy import select

from dockyard.app import create_app
from dockyard.metadata.schema import events
from dockyard.replication.stamps import Stamp
from dockyard.services import Services

SECRET = "peer-secret-in-process"
BASE = "/_dockyard/replication/v1/registries/dockyard"
PEER = {"Authorization": f"Bearer {SECRET}", "X-Dockyard-Region": "eastus"}
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        region={
            "name": "westus",
            "peers": [{"name": "eastus", "url": "http://127.0.0.1:9"}],
            "peer_secret": SECRET,
        },
    )


def in_session(services: Services, work: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
    app = create_app(services, background=False)

    async def session() -> None:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            await work(http)

    asyncio.run(session())


def stamp(moment: datetime, region: str = "eastus") -> dict[str, Any]:
    return Stamp.at(moment, region).as_json()


async def send_image(http: httpx.AsyncClient, image: images.Image, repo: str) -> None:
    for digest, data in image.blobs.items():
        linked = await http.post(
            f"{BASE}/blobs/{digest}/link", params={"repository": repo}, headers=PEER
        )
        if linked.status_code == 404:
            put = await http.put(
                f"{BASE}/blobs/{digest}", params={"repository": repo}, content=data, headers=PEER
            )
            assert put.status_code == 201, put.text
    for _ in range(2):  # a replay changes nothing
        put = await http.put(
            f"{BASE}/manifests/{image.digest}",
            params={"repository": repo},
            content=image.manifest,
            headers={**PEER, "Content-Type": images.OCI_MANIFEST},
        )
        assert put.status_code == 201, put.text


async def write(
    http: httpx.AsyncClient, tag: str, digest: str | None, moment: datetime, region: str = "eastus"
) -> bool:
    body = {"repository": "app", "tag": tag, "digest": digest, "stamp": stamp(moment, region)}
    answer = await http.post(f"{BASE}/tags", json=body, headers=PEER)
    assert answer.status_code == 200, answer.text
    return answer.json()["applied"]


async def digest_of(http: httpx.AsyncClient, tag: str) -> str | None:
    answer = await http.head(f"/v2/app/manifests/{tag}", headers={"Accept": images.OCI_MANIFEST})
    return answer.headers["Docker-Content-Digest"] if answer.status_code == 200 else None


def test_only_a_known_peer_with_the_credential_is_answered(services: Services) -> None:
    async def work(http: httpx.AsyncClient) -> None:
        assert (await http.get("/_dockyard/replication/v1/ping", headers=PEER)).json() == {
            "region": "westus"
        }
        for headers in (
            {},
            {**PEER, "Authorization": "Bearer wrong"},
            {**PEER, "X-Dockyard-Region": "northpole"},
            {"Authorization": f"Basic {SECRET}", "X-Dockyard-Region": "eastus"},
        ):
            refused = await http.get("/_dockyard/replication/v1/ping", headers=headers)
            assert refused.status_code == 401 and SECRET not in refused.text
        body = {"repository": "app", "tag": "x", "digest": None, "stamp": stamp(LONG_AGO)}
        refused = await http.post(f"{BASE}/tags", json=body)
        assert refused.status_code == 401
        bad = await http.post(
            f"{BASE}/tags", json={**body, "stamp": {"wall": "soon"}}, headers=PEER
        )
        assert bad.status_code == 400
        unknown = await http.post(
            "/_dockyard/replication/v1/registries/nothere/tags", json=body, headers=PEER
        )
        assert unknown.status_code == 404

    in_session(services, work)


def test_tag_writes_apply_by_their_stamps(services: Services) -> None:
    one, two = images.busybox_image("amd64"), images.busybox_image("arm64")

    async def work(http: httpx.AsyncClient) -> None:
        await send_image(http, one, "app")
        await send_image(http, two, "app")
        t = LONG_AGO
        assert await write(http, "v1", one.digest, t)
        assert not await write(http, "v1", one.digest, t)  # the same write again
        assert not await write(http, "v1", two.digest, t - timedelta(seconds=1))  # older
        assert not await write(http, "v1", two.digest, t, "centralus")  # a tie: eastus > centralus
        assert await digest_of(http, "v1") == one.digest
        assert await write(http, "v1", two.digest, t, "westus2")  # a tie: westus2 > eastus
        assert await digest_of(http, "v1") == two.digest

        # A delete is a write: an older one loses, a later one wins, a later write after it.
        assert not await write(http, "v1", None, t - timedelta(seconds=1))
        assert await write(http, "v1", None, t + timedelta(seconds=1))
        assert await digest_of(http, "v1") is None
        assert not await write(http, "v1", one.digest, t)  # older than the delete
        assert await write(http, "v1", one.digest, t + timedelta(seconds=2))
        assert await digest_of(http, "v1") == one.digest

        # A push here is stamped with its own time: a peer's older write loses to it, a
        # later one wins.
        push = await http.put(
            "/v2/app/manifests/local",
            content=two.manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert push.status_code == 201
        assert not await write(http, "local", one.digest, LONG_AGO)
        assert await digest_of(http, "local") == two.digest
        later = datetime.now(UTC) + timedelta(seconds=5)
        assert await write(http, "local", one.digest, later)
        assert await digest_of(http, "local") == one.digest
        # The clock observed that stamp: a push here now is stamped after it.
        again = await http.put(
            "/v2/app/manifests/local",
            content=two.manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert again.status_code == 201
        assert not await write(http, "local", one.digest, later + timedelta(microseconds=1))
        assert await digest_of(http, "local") == two.digest

        # What a peer's webhook located here asks: is the manifest here?
        held = f"{BASE}/manifests/{one.digest}"
        assert (await http.get(held, params={"repository": "app"}, headers=PEER)).status_code == 200
        gone = await http.get(held, params={"repository": "other"}, headers=PEER)
        assert gone.status_code == 404
        assert (await http.get(held, params={"repository": "app"})).status_code == 401

        # A tag whose manifest has not arrived is refused (the sender retries it).
        missing = "sha256:" + "0" * 64
        body = {"repository": "app", "tag": "v9", "digest": missing, "stamp": stamp(later)}
        assert (await http.post(f"{BASE}/tags", json=body, headers=PEER)).status_code == 404

    in_session(services, work)


def test_a_manifest_delete_takes_older_tags_and_yields_to_later_writes(
    services: Services,
) -> None:
    one = images.busybox_image("amd64")

    async def work(http: httpx.AsyncClient) -> None:
        await send_image(http, one, "app")
        t = LONG_AGO
        assert await write(http, "a", one.digest, t)
        assert await write(http, "b", one.digest, t + timedelta(seconds=10))

        async def delete(moment: datetime) -> bool:
            body = {
                "repository": "app",
                "digest": one.digest,
                "tags": ["a"],
                "stamp": stamp(moment),
            }
            answer = await http.post(f"{BASE}/deletes", json=body, headers=PEER)
            assert answer.status_code == 200, answer.text
            return answer.json()["deleted"]

        # Older than b's write: a goes, b and the manifest stay.
        assert not await delete(t + timedelta(seconds=5))
        assert await digest_of(http, "a") is None
        assert await digest_of(http, "b") == one.digest
        # Later than every write: all go; a replay finds nothing to do.
        assert await delete(t + timedelta(seconds=20))
        assert (await http.get(f"/v2/app/manifests/{one.digest}")).status_code == 404
        assert not await delete(t + timedelta(seconds=20))

    in_session(services, work)


def test_a_manifest_sent_with_its_tag_is_one_push(services: Services) -> None:
    one = images.busybox_image("amd64")

    async def work(http: httpx.AsyncClient) -> None:
        await send_image(http, one, "app")  # blobs, then the manifest by digest
        for data in (one.config, *one.layers):
            linked = await http.post(
                f"{BASE}/blobs/{images.sha256_digest(data)}/link",
                params={"repository": "tagged"},
                headers=PEER,
            )
            assert linked.status_code == 200
        for moment, applied in ((LONG_AGO, True), (LONG_AGO, False)):  # then a replay
            put = await http.put(
                f"{BASE}/manifests/{one.digest}",
                params={
                    "repository": "tagged",
                    "tag": "v1",
                    "wall": str(Stamp.at(moment, "eastus").wall),
                    "region": "eastus",
                },
                content=one.manifest,
                headers={**PEER, "Content-Type": images.OCI_MANIFEST},
            )
            assert put.status_code == 201 and put.json() == {"applied": applied}, put.text
        got = await http.head("/v2/tagged/manifests/v1", headers={"Accept": images.OCI_MANIFEST})
        assert got.headers["Docker-Content-Digest"] == one.digest
        with services.meta.connection() as conn:
            pushes = conn.execute(
                select(events.c.action).where(events.c.repository == "tagged")
            ).all()
        assert [row.action for row in pushes] == ["push"]

    in_session(services, work)
