"""Webhooks against a real `dockyard serve` (its in-process worker polling the outbox
every 0.2 s, retrying from 0.5 s to 1 s, a 2 s delivery timeout) and a real HTTP
receiver on a loopback port started here: one endpoint answers 200, one 500 until told
to recover, one never answers. Webhooks are made with the `dockyard webhook` CLI over
the management API, as an administrator does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import images
import pytest
from conftest import RegistryServer

pytestmark = pytest.mark.timeout(120)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_LAYER = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict
    status: int  # what the receiver answered


class Receiver:
    """A threaded HTTP server: `/ok/...` answers 200; `/flaky` answers 500 while `down`;
    `/hang` never answers (until the receiver stops)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.down = True
        self.hanging = threading.Event()  # a /hang request is being held
        self._release = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/hang":
                    receiver.hanging.set()
                    receiver._release.wait(60)
                    return
                status = 500 if self.path == "/flaky" and receiver.down else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._changed:
                    receiver.received.append(Received(self.path, headers, body, status))
                    receiver._changed.notify_all()
                answer = b'{"ok": true}' if status == 200 else b"receiver is down"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def at(self, path: str) -> list[Received]:
        with self._changed:
            return [r for r in self.received if r.path == path]

    def wait(self, path: str, check: Callable[[list[Received]], bool], timeout=20.0) -> list:
        with self._changed:
            if not self._changed.wait_for(lambda: check(self.at(path)), timeout):
                raise AssertionError(f"{path} never got there: {self.at(path)}")
            return self.at(path)

    def stop(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    base = tmp_path_factory.mktemp("webhooks")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        env={
            "DOCKYARD_OUTBOX__POLL_SECONDS": "0.2",
            "DOCKYARD_OUTBOX__RETRY_FIRST_SECONDS": "0.5",
            "DOCKYARD_OUTBOX__RETRY_MAX_SECONDS": "1",
            "DOCKYARD_WEBHOOKS__TIMEOUT_SECONDS": "2",
        },
    ).start() as server:
        yield server


def small_image(seed: str, config_media_type: str = OCI_CONFIG) -> images.Image:
    config = images.json_bytes({"seed": seed, "name": "mychart", "version": seed})
    layer = f"layer {seed}".encode()
    layer_type = HELM_LAYER if config_media_type == HELM_CONFIG else images.OCI_LAYER_GZIP
    manifest = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": images.descriptor(config_media_type, config),
            "layers": [images.descriptor(layer_type, layer)],
        }
    )
    return images.Image(manifest, OCI_MANIFEST, config, (layer,), {})


def create(server: RegistryServer, name: str, uri: str, *args: str) -> None:
    server.manage("webhook", "create", "-n", name, "-r", "dockyard", "--uri", uri, *args)


def events(server: RegistryServer, name: str) -> list[dict]:
    return json.loads(
        server.manage("webhook", "list-events", "-n", name, "-r", "dockyard", "-o", "json")
    )


def delete(server: RegistryServer, repo: str, digest: str) -> None:
    with server.client() as http:
        assert http.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202


def test_push_and_delete_deliver_acr_payloads_with_custom_headers(
    server: RegistryServer, receiver: Receiver
) -> None:
    uri = f"{receiver.url}/ok/basic?code=s3cret"
    create(
        server,
        "basic01",
        uri,
        "--actions",
        "push,delete",
        "--headers",
        "Authorization=Bearer s3cret",
        "--headers",
        "X-Team=web",
        "--scope",
        "wh/basic:*",
    )
    image = small_image("basic")
    digest = server.push_image("wh/basic", image, "v1")
    delete(server, "wh/basic", digest)
    push, deleted = receiver.wait("/ok/basic?code=s3cret", lambda got: len(got) >= 2)

    assert push.body["action"] == "push"
    assert set(push.body) == {"id", "timestamp", "action", "target", "request"}
    assert push.body["timestamp"].endswith("Z")
    assert push.body["target"] == {
        "mediaType": OCI_MANIFEST,
        "size": len(image.manifest),
        "digest": digest,
        "length": len(image.manifest),
        "repository": "wh/basic",
        "tag": "v1",
    }
    assert set(push.body["request"]) == {"id", "host", "method", "useragent"}
    assert push.body["request"]["method"] == "PUT"
    assert push.body["request"]["host"] == server.host
    assert push.body["request"]["useragent"].startswith("python-httpx")
    # ACR's headers: Content-Type and the custom ones, nothing of the client library's.
    assert push.headers["content-type"] == "application/json"
    assert push.headers["authorization"] == "Bearer s3cret"
    assert push.headers["x-team"] == "web"
    assert "user-agent" not in push.headers and "accept" not in push.headers

    assert deleted.body["action"] == "delete"
    assert deleted.body["target"] == {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "repository": "wh/basic",
    }
    assert deleted.body["request"]["method"] == "DELETE"
    assert deleted.body["id"] != push.body["id"]

    # The history shows both POSTs as sent, secrets masked, and the answers.
    shown = {e["id"]: e for e in events(server, "basic01")}
    sent = shown[push.body["id"]]
    assert sent["eventRequestMessage"]["content"] == push.body
    assert sent["eventRequestMessage"]["method"] == "POST"
    assert sent["eventRequestMessage"]["requestUri"] == f"{receiver.url}/ok/basic?code=******"
    assert sent["eventRequestMessage"]["headers"]["authorization"] == "******"
    assert sent["eventRequestMessage"]["headers"]["x-team"] == "******"
    assert sent["eventResponseMessage"]["statusCode"] == "200"
    assert sent["eventResponseMessage"]["content"] == '{"ok": true}'
    assert shown[deleted.body["id"]]["eventResponseMessage"]["statusCode"] == "200"
    # Only getCallbackConfig shows the secrets.
    config = json.loads(
        server.manage("webhook", "get-config", "-n", "basic01", "-r", "dockyard", "-o", "json")
    )
    assert config == {
        "serviceUri": uri,
        "customHeaders": {"Authorization": "Bearer s3cret", "X-Team": "web"},
    }
    shown_hook = json.loads(
        server.manage("webhook", "show", "-n", "basic01", "-r", "dockyard", "-o", "json")
    )
    assert "s3cret" not in json.dumps(shown_hook)

    # A ping is sent now, answered, and joins the history.
    pinged = json.loads(
        server.manage("webhook", "ping", "-n", "basic01", "-r", "dockyard", "-o", "json")
    )
    [ping] = [r for r in receiver.at("/ok/basic?code=s3cret") if r.body["action"] == "ping"]
    assert ping.body["id"] == pinged["id"]
    latest = events(server, "basic01")[0]
    assert latest["id"] == pinged["id"]
    assert latest["eventResponseMessage"]["statusCode"] == "200"


def test_scope_filters_and_a_disabled_webhook_gets_nothing(
    server: RegistryServer, receiver: Receiver
) -> None:
    create(
        server,
        "scoped01",
        f"{receiver.url}/ok/scoped",
        "--actions",
        "push",
        "--scope",
        "wh/scope:v1",
    )
    create(
        server,
        "wildcard1",
        f"{receiver.url}/ok/wildcard",
        "--actions",
        "push",
        "--scope",
        "wh/sc*:v*",
    )
    create(
        server,
        "disabled1",
        f"{receiver.url}/ok/disabled",
        "--actions",
        "push",
        "--status",
        "disabled",
    )
    server.push_image("wh/scope", small_image("s2"), "v2")
    server.push_image("wh/scope", small_image("s0"), "other")
    server.push_image("wh/scope", small_image("s1"), "v1")
    # In order per repository: when v1 (pushed last) arrives, v2 and `other` were decided.
    [only] = receiver.wait("/ok/scoped", lambda got: len(got) >= 1)
    got = receiver.wait("/ok/wildcard", lambda got: len(got) >= 2)
    assert receiver.at("/ok/scoped") == [only]
    assert only.body["target"]["tag"] == "v1"
    assert [r.body["target"]["tag"] for r in got] == ["v2", "v1"]
    # Enabled again, the webhook gets what happens from then on, nothing of before.
    server.manage("webhook", "update", "-n", "disabled1", "-r", "dockyard", "--status", "enabled")
    server.push_image("wh/scope", small_image("s3"), "v3")
    [after] = receiver.wait("/ok/disabled", lambda got: len(got) >= 1)
    assert after.body["target"]["tag"] == "v3"
    assert events(server, "disabled1")[-1]["id"] == after.body["id"]
    assert len(events(server, "disabled1")) == 1


def test_a_failing_receiver_gets_every_event_in_order_once_it_recovers(
    server: RegistryServer, receiver: Receiver
) -> None:
    create(
        server, "flaky0001", f"{receiver.url}/flaky", "--actions", "push", "--scope", "wh/flaky:*"
    )
    tags = [f"v{n}" for n in range(1, 6)]
    for tag in tags:
        server.push_image("wh/flaky", small_image(f"flaky {tag}"), tag)
    # Retried with backoff, and nothing of the repository passes the first event.
    failed = receiver.wait("/flaky", lambda got: len(got) >= 3)
    assert {r.body["target"]["tag"] for r in failed} == {"v1"}
    assert {r.status for r in failed} == {500}
    receiver.down = False
    got = receiver.wait("/flaky", lambda got: sum(r.status == 200 for r in got) >= len(tags))
    acknowledged = [r.body for r in got if r.status == 200]
    assert [b["target"]["tag"] for b in acknowledged] == tags
    assert len({b["id"] for b in acknowledged}) == len(tags)  # each acknowledged once
    # Every retry carried the same id; the history shows the failures and the answers.
    assert {r.body["id"] for r in got if r.status == 500} == {acknowledged[0]["id"]}
    history = events(server, "flaky0001")
    statuses = [e["eventResponseMessage"]["statusCode"] for e in history]
    assert statuses.count("200") == len(tags)
    assert statuses.count("500") == sum(r.status == 500 for r in got)
    failure = next(e for e in history if e["eventResponseMessage"]["statusCode"] == "500")
    assert failure["eventResponseMessage"]["content"] == "receiver is down"
    assert failure["eventResponseMessage"]["reasonPhrase"] == "Internal Server Error"


def test_a_hanging_receiver_delays_neither_pushes_nor_other_webhooks(
    server: RegistryServer, receiver: Receiver
) -> None:
    create(server, "hanging01", f"{receiver.url}/hang", "--actions", "push", "--scope", "wh/hang:*")
    create(
        server,
        "beside001",
        f"{receiver.url}/ok/beside",
        "--actions",
        "push",
        "--scope",
        "wh/hang:*",
    )
    server.push_image("wh/hang", small_image("hang 1"), "v1")
    assert receiver.hanging.wait(20), "the hanging webhook was never sent anything"
    # While the receiver holds that POST, pushes succeed and the other webhook gets them.
    server.push_image("wh/hang", small_image("hang 2"), "v2")
    got = receiver.wait("/ok/beside", lambda got: len(got) >= 2)
    assert [r.body["target"]["tag"] for r in got] == ["v1", "v2"]
    # The POST that got no answer ends at the timeout, recorded in the history.
    recorded = []
    for _ in range(20):
        recorded = events(server, "hanging01")
        if recorded:
            break
        time.sleep(0.5)
    assert recorded, "the hanging POST was never recorded"
    answer = recorded[-1]["eventResponseMessage"]
    assert answer["statusCode"] is None
    assert "timeout" in answer["reasonPhrase"]


def test_helm_charts_give_chart_push_and_chart_delete(
    server: RegistryServer, receiver: Receiver
) -> None:
    create(
        server,
        "charts001",
        f"{receiver.url}/ok/charts",
        "--actions",
        "chart_push",
        "--actions",
        "chart_delete",
        "--scope",
        "wh/charts/*:*",
    )
    server.push_image("wh/plain", small_image("not a chart"), "0.1.0")  # out of scope anyway
    chart = small_image("0.1.0", HELM_CONFIG)
    digest = server.push_image("wh/charts/mychart", chart, "0.1.0")
    server.push_image("wh/charts/mychart", small_image("image"), "image")  # not a chart
    delete(server, "wh/charts/mychart", digest)
    pushed, deleted = receiver.wait("/ok/charts", lambda got: len(got) >= 2)
    assert pushed.body["action"] == "chart_push"
    assert pushed.body["target"] == {
        "mediaType": OCI_MANIFEST,
        "size": len(chart.manifest),
        "digest": digest,
        "repository": "wh/charts/mychart",
        "tag": "0.1.0",
        "name": "mychart",
        "version": "0.1.0",
    }
    assert "request" not in pushed.body
    assert deleted.body["action"] == "chart_delete"
    assert deleted.body["target"]["digest"] == digest
    assert deleted.body["target"]["name"] == "mychart"
