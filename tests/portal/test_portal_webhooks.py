"""The portal's webhooks pages in process: an Owner creates a webhook, pings it (a real
POST to a receiver on loopback) and reads the delivery; a Reader sees the list and is
refused every change and the deliveries; the admin user, who has no management rights
on the APIs either, gets 403."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from endpoint import AppEndpoint
from test_portal_pages import ADMIN_PASSWORD, _csrf, sign_in

from dockyard.server import prepare
from dockyard.services import build_services
from dockyard.settings import load_settings


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.received.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppEndpoint]:
    settings = load_settings(
        None, data_dir=tmp_path_factory.mktemp("hooks"), admin_password=ADMIN_PASSWORD
    )
    prepare(settings)
    found = AppEndpoint(build_services(settings))
    yield found
    found.close()


def identity(endpoint: AppEndpoint, name: str, role: str) -> tuple[str, str]:
    services = endpoint.services
    made, secret = services.administration.create_identity(name)
    services.administration.assign_role(services.registries.all()[0], made.id, role)
    return made.id, secret


def test_an_owner_creates_and_pings_a_webhook(endpoint: AppEndpoint, receiver: str) -> None:
    with endpoint.client() as http:
        assert sign_in(http, *identity(endpoint, "hook-owner", "Owner")).status_code == 303
        assert "/portal/r/dockyard/webhooks" in http.get("/portal/").text
        page = http.get("/portal/r/dockyard/webhooks")
        assert page.status_code == 200 and "No webhooks." in page.text
        created = http.post(
            "/portal/r/dockyard/webhooks",
            data={
                "csrf": _csrf(page.text),
                "name": "portalhook",
                "uri": receiver,
                "actions": ["push", "delete"],
                "scope": "",
            },
        )
        assert created.status_code == 303
        detail = http.get(created.headers["location"])
        assert "push, delete" in detail.text and "Nothing sent yet." in detail.text
        pinged = http.post(
            "/portal/r/dockyard/webhooks/portalhook/ping", data={"csrf": _csrf(detail.text)}
        )
        assert pinged.status_code == 303
        assert any(b'"ping"' in body for body in _Receiver.received)
        after = http.get("/portal/r/dockyard/webhooks/portalhook")
        assert "ping" in after.text and "200" in after.text and receiver in after.text
        bad = http.post(
            "/portal/r/dockyard/webhooks",
            data={"csrf": _csrf(page.text), "name": "x", "uri": receiver, "actions": ["push"]},
        )
        assert bad.status_code == 400 and "5-50 letters or digits" in bad.text


def test_an_owner_edits_and_deletes_a_webhook(endpoint: AppEndpoint, receiver: str) -> None:
    services = endpoint.services
    registry = services.registries.all()[0]
    services.webhooks.create(
        registry, "edithook", receiver, ["push"], custom_headers={"X-Key": "sealed-1"}
    )
    with endpoint.client() as http:
        sign_in(http, *identity(endpoint, "hook-editor", "Owner"))
        page = http.get("/portal/r/dockyard/webhooks/edithook")
        assert "Save changes" in page.text and "sealed-1" not in page.text
        assert receiver not in page.text
        url, token = "/portal/r/dockyard/webhooks/edithook", _csrf(page.text)
        changed = http.post(
            f"{url}/edit",
            data={
                "csrf": token,
                "uri": "",
                "headers": "Authorization: Bearer sealed-2\nX-Trace: on",
                "actions": ["push", "delete"],
                "scope": "app:*",
                "status": "disabled",
            },
        )
        assert changed.status_code == 303
        shown = services.webhooks.get(registry, "edithook")
        assert shown.actions == ("push", "delete") and shown.scope == "app:*"
        assert shown.status == "disabled"
        config = services.webhooks.callback_config(registry, "edithook")
        assert config.service_uri == receiver
        assert config.custom_headers == {"Authorization": "Bearer sealed-2", "X-Trace": "on"}
        after = http.get(changed.headers["location"])
        assert "changed." in after.text and "sealed-2" not in after.text
        # Empty fields keep the stored URI and headers.
        kept = http.post(
            f"{url}/edit", data={"csrf": token, "actions": ["push"], "status": "enabled"}
        )
        assert kept.status_code == 303
        assert services.webhooks.callback_config(registry, "edithook") == config
        for bad, words in (
            ({"scope": "a:b:c:d"}, "Not changed:"),
            ({"uri": "ftp://nowhere"}, "Not changed:"),
            ({"headers": "no colon sealed-3"}, "line 1 is not"),
        ):
            refused = http.post(
                f"{url}/edit",
                data={"csrf": token, "actions": ["push"], "status": "enabled", **bad},
            )
            assert refused.status_code == 400 and words in refused.text, bad
            assert "Save changes" in refused.text and "sealed-3" not in refused.text
        deleted = http.post(f"{url}/delete", data={"csrf": token})
        assert deleted.status_code == 303
        assert "Webhook edithook deleted." in http.get(deleted.headers["location"]).text
        assert http.get(url).status_code == 404
    assert "edithook" not in [hook.name for hook in services.webhooks.list(registry)]


def test_a_reader_sees_webhooks_but_changes_nothing(endpoint: AppEndpoint, receiver: str) -> None:
    endpoint.services.webhooks.create(
        endpoint.services.registries.all()[0], "readablehook", receiver, ["push"]
    )
    with endpoint.client() as http:
        assert sign_in(http, *identity(endpoint, "hook-reader", "Reader")).status_code == 303
        page = http.get("/portal/r/dockyard/webhooks")
        assert page.status_code == 200 and "readablehook" in page.text
        assert "New webhook" not in page.text
        detail = http.get("/portal/r/dockyard/webhooks/readablehook")
        assert "may read this webhook but not change it" in detail.text
        # The session's token is in every page's sign-out form.
        token = _csrf(detail.text)
        for path, data in (
            (
                "/portal/r/dockyard/webhooks",
                {"name": "readerhook", "uri": receiver, "actions": ["push"]},
            ),
            ("/portal/r/dockyard/webhooks/readablehook/ping", {}),
            ("/portal/r/dockyard/webhooks/readablehook/status", {"status": "disabled"}),
            ("/portal/r/dockyard/webhooks/readablehook/edit", {"status": "disabled"}),
            ("/portal/r/dockyard/webhooks/readablehook/delete", {}),
        ):
            refused = http.post(path, data={"csrf": token, **data})
            assert refused.status_code == 403, path
    assert [
        h.name for h in endpoint.services.webhooks.list(endpoint.services.registries.all()[0])
    ].count("readerhook") == 0


def test_the_admin_user_has_no_webhook_pages(endpoint: AppEndpoint) -> None:
    with endpoint.client() as http:
        sign_in(http, "dockyard", ADMIN_PASSWORD)
        assert http.get("/portal/r/dockyard/webhooks").status_code == 403
