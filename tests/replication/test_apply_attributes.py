"""A peer's locks, quarantine states, soft deletes and restores applied in process: each
lock and each manifest's quarantine state is a value of its own, written only by a stamp
later than its value's here (a local change included), so replays and older writes
change nothing; a lock binds this region's clients once here, but never refuses a peer's
write (made where it was allowed, and needed here for the regions to converge); a delete
that went to the peer's recycle bin goes to this region's too, whatever its soft delete
policy, and a restore there takes the manifest and its tag out of the bin here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import images
from test_apply import BASE, LONG_AGO, PEER, digest_of, in_session, send_image, services, write

from dockyard.replication.stamps import Stamp
from dockyard.services import Services

__all__ = ["services"]  # the fixture, shared with test_apply


async def locks(
    http: httpx.AsyncClient,
    moment: datetime,
    changes: dict[str, bool],
    tag: str | None = None,
    digest: str | None = None,
) -> list[str]:
    body = {
        "repository": "app",
        "tag": tag,
        "digest": digest,
        "changes": changes,
        "stamp": Stamp.at(moment, "eastus").as_json(),
    }
    answer = await http.post(f"{BASE}/locks", json=body, headers=PEER)
    assert answer.status_code == 200, answer.text
    return answer.json()["applied"]


async def quarantine(http: httpx.AsyncClient, digest: str, state: str, moment: datetime) -> bool:
    body = {
        "repository": "app",
        "digest": digest,
        "state": state,
        "details": None,
        "stamp": Stamp.at(moment, "eastus").as_json(),
    }
    answer = await http.post(f"{BASE}/quarantine", json=body, headers=PEER)
    assert answer.status_code == 200, answer.text
    return answer.json()["applied"]


async def tag_locks(http: httpx.AsyncClient, tag: str) -> dict[str, bool]:
    answer = await http.get(f"/acr/v1/app/_tags/{tag}")
    assert answer.status_code == 200, answer.text
    return answer.json()["tag"]["changeableAttributes"]


def test_each_lock_applies_by_its_stamp_and_binds_clients_not_peers(services: Services) -> None:
    one, two = images.busybox_image("amd64"), images.busybox_image("arm64")

    async def work(http: httpx.AsyncClient) -> None:
        await send_image(http, one, "app")
        await send_image(http, two, "app")
        t = LONG_AGO
        assert await write(http, "v1", one.digest, t)
        assert await locks(http, t, {"writeEnabled": False}, tag="v1") == ["writeEnabled"]
        assert await locks(http, t, {"writeEnabled": False}, tag="v1") == []  # a replay
        older = t - timedelta(seconds=1)
        assert await locks(http, older, {"writeEnabled": True}, tag="v1") == []
        assert (await tag_locks(http, "v1"))["writeEnabled"] is False

        # The lock binds this region's clients ...
        push = await http.put(
            "/v2/app/manifests/v1",
            content=two.manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert push.status_code == 403, push.text
        assert (await http.delete("/v2/app/manifests/v1")).status_code == 403
        # ... never a peer's write, made before the lock reached the peer.
        assert await write(http, "v1", two.digest, t + timedelta(seconds=1))
        assert await digest_of(http, "v1") == two.digest

        # Locks are values of their own: another lock of the tag has its own stamp.
        assert await locks(http, older, {"deleteEnabled": False}, tag="v1") == ["deleteEnabled"]

        # A change here is stamped now: an older peer's change loses to it, a later wins.
        patched = await http.patch("/acr/v1/app/_tags/v1", json={"writeEnabled": True})
        assert patched.status_code == 200, patched.text
        later = t + timedelta(seconds=30)
        assert await locks(http, later, {"writeEnabled": False}, tag="v1") == []
        assert (await tag_locks(http, "v1"))["writeEnabled"] is True
        soon = datetime.now(UTC) + timedelta(seconds=5)
        assert await locks(http, soon, {"writeEnabled": False}, tag="v1") == ["writeEnabled"]

        # A manifest's and the repository's locks, and a lock on what is not here.
        assert await locks(http, t, {"readEnabled": False}, digest=one.digest) == ["readEnabled"]
        assert (await http.get(f"/v2/app/manifests/{one.digest}")).status_code == 403
        assert await locks(http, t, {"deleteEnabled": False}) == ["deleteEnabled"]
        assert (await http.delete("/acr/v1/app")).status_code == 403
        # A write-locked repository takes a peer's blobs and manifests all the same.
        assert await locks(http, t, {"writeEnabled": False}) == ["writeEnabled"]
        three = images.busybox_image("ppc64le")
        await send_image(http, three, "app")
        assert await write(http, "v3", three.digest, t)
        started = await http.post("/v2/app/blobs/uploads/")
        assert started.status_code == 403  # a client's upload is refused
        assert await locks(http, t, {"writeEnabled": False}, tag="absent") == []
        bad = {"repository": "app", "changes": {"teleportEnabled": True}}
        refused = await http.post(
            f"{BASE}/locks", json={**bad, "stamp": Stamp.at(t, "eastus").as_json()}, headers=PEER
        )
        assert refused.status_code == 400

    in_session(services, work)


def test_a_quarantine_state_applies_by_its_stamp(services: Services) -> None:
    one = images.busybox_image("amd64")

    async def work(http: httpx.AsyncClient) -> None:
        await send_image(http, one, "app")

        async def state() -> str | None:
            answer = await http.get(f"/acr/v1/app/_manifests/{one.digest}")
            return answer.json()["manifest"]["changeableAttributes"].get("quarantineState")

        t = LONG_AGO
        assert await quarantine(http, one.digest, "Failed", t)
        assert not await quarantine(http, one.digest, "Failed", t)  # a replay
        assert not await quarantine(http, one.digest, "Passed", t - timedelta(seconds=1))
        assert await state() == "Failed"
        assert await quarantine(http, one.digest, "Passed", t + timedelta(seconds=1))
        assert await state() == "Passed"
        # A writer here now: an older peer's state loses to it.
        patched = await http.patch(
            f"/acr/v1/app/_manifests/{one.digest}", json={"quarantineState": "Failed"}
        )
        assert patched.status_code == 200, patched.text
        assert not await quarantine(http, one.digest, "Passed", t + timedelta(seconds=2))
        assert await state() == "Failed"
        soon = datetime.now(UTC) + timedelta(seconds=5)
        assert await quarantine(http, one.digest, "Passed", soon)
        assert await state() == "Passed"
        body = {"repository": "app", "digest": one.digest, "state": "Quarantined"}
        refused = await http.post(
            f"{BASE}/quarantine",
            json={**body, "stamp": Stamp.at(soon, "eastus").as_json()},
            headers=PEER,
        )
        assert refused.status_code == 400

    in_session(services, work)


def test_a_soft_delete_bins_here_and_a_restore_takes_it_out(services: Services) -> None:
    one = images.busybox_image("amd64")

    async def work(http: httpx.AsyncClient) -> None:
        await send_image(http, one, "app")
        t = LONG_AGO
        assert await write(http, "v1", one.digest, t)
        # Its locks when deleted come back with the restore.
        assert await locks(http, t, {"deleteEnabled": False}, digest=one.digest)
        # The peer's delete went to its bin: this region's policy is off, it bins too.
        body = {
            "repository": "app",
            "digest": one.digest,
            "tags": ["v1"],
            "stamp": Stamp.at(t + timedelta(seconds=1), "eastus").as_json(),
            "soft": True,
        }
        deleted = await http.post(f"{BASE}/deletes", json=body, headers=PEER)
        assert deleted.status_code == 200 and deleted.json()["deleted"], deleted.text
        binned = (await http.get("/acr/v1/_deleted/app/_manifests")).json()["manifests"]
        assert [m["digest"] for m in binned] == [one.digest]
        tags = (await http.get("/acr/v1/_deleted/app/_tags")).json()["tags"]
        assert [(x["tag"], x["digest"]) for x in tags] == [("v1", one.digest)]
        # A client's push of the binned digest is refused, as ever ...
        push = await http.put(
            f"/v2/app/manifests/{one.digest}",
            content=one.manifest,
            headers={"Content-Type": images.OCI_MANIFEST},
        )
        assert push.status_code == 403
        # ... the peer's restore (its manifest, then its tag) takes both out of the bin.
        await send_image(http, one, "app")
        body = {
            "repository": "app",
            "tag": "v1",
            "digest": one.digest,
            "stamp": Stamp.at(t + timedelta(seconds=2), "eastus").as_json(),
            "restored": True,
        }
        restored = await http.post(f"{BASE}/tags", json=body, headers=PEER)
        assert restored.status_code == 200 and restored.json()["applied"], restored.text
        assert await digest_of(http, "v1") == one.digest
        assert (await http.get("/acr/v1/_deleted/app/_manifests")).json()["manifests"] == []
        assert (await http.get("/acr/v1/_deleted/app/_tags")).json()["tags"] == []
        shown = await http.get(f"/acr/v1/app/_manifests/{one.digest}")
        assert shown.json()["manifest"]["changeableAttributes"]["deleteEnabled"] is False

        # A delete that did not go to the peer's bin does not go to this one.
        body = {
            "repository": "app",
            "tag": "v1",
            "digest": None,
            "stamp": Stamp.at(t + timedelta(seconds=3), "eastus").as_json(),
        }
        assert (await http.post(f"{BASE}/tags", json=body, headers=PEER)).json()["applied"]
        assert (await http.get("/acr/v1/_deleted/app/_tags")).json()["tags"] == []

    in_session(services, work)
