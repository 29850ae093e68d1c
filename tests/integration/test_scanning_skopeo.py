"""Vulnerability scanning against a real server and a real client, end to end: an image
whose layer holds packages real advisories affect (Debian 12's dpkg status, a Python
dist-info, an npm package.json; tests/image_contents.py) pushed with skopeo to a server
that scans on push, with the advisories imported by `dockyard vulndb import` and the
switch set by `dockyard scan config` on the server's own data directory while it runs;
the server's background work reads the layers, finds the advisories, stores the report
referrer, sends a webhook made with `dockyard webhook create --actions scan` to a real
receiver, and `dockyard scan show` prints them. Then `skopeo copy` is refused with
`DENIED` naming the worst finding once `dockyard scan policy` enables the pull policy,
then naming the next once the first is allowlisted, and let through once every high
finding is (one by an alias). The server notices each change of the
offline side on its next request (the read cache's counters)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import image_contents as contents
import images
from osv_facts import ALL, write_zip
from test_webhooks import Receiver
from typer.testing import CliRunner

from dockyard.cli.main import app
from dockyard.scanning.reports import REPORT_TYPE

TLS_OFF = ("--src-tls-verify=false", "--dest-tls-verify=false")


def dockyard(data_dir: Path, *args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def scanned(http: httpx.Client, repo: str, reference: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        shown = http.get(f"/acr/v1/_vulnerabilities/{repo}/_manifests/{reference}").json()
        if shown["status"] == "scanned" or time.monotonic() > deadline:
            return shown
        time.sleep(0.2)


def test_a_skopeo_push_is_scanned_and_its_pulls_refused(
    fresh_registry, skopeo, tmp_path: Path
) -> None:
    data_dir = fresh_registry.data_dir
    imported = dockyard(data_dir, "vulndb", "import", str(write_zip(tmp_path / "all.zip", ALL)))
    assert "6 added" in imported
    dockyard(data_dir, "scan", "config", "--on-push")
    receiver = Receiver()
    try:
        fresh_registry.manage(
            "webhook", "create", "-n", "scans", "-r", "dockyard",
            "--uri", f"{receiver.url}/ok/scans", "--actions", "scan",
        )  # fmt: skip
        scanned_and_refused(fresh_registry, skopeo, tmp_path, receiver)
    finally:
        receiver.stop()


def scanned_and_refused(fresh_registry, skopeo, tmp_path: Path, receiver: Receiver) -> None:
    data_dir = fresh_registry.data_dir
    image = contents.oci_image([contents.vulnerable_layer()])
    layout = images.write_oci_layout(tmp_path / "layout", {"latest": image})
    dest = f"docker://{fresh_registry.host}/app/web:1"
    skopeo("copy", *TLS_OFF, "--preserve-digests", f"oci:{layout}:latest", dest)

    with fresh_registry.client() as http:
        shown = scanned(http, "app/web", "1")
        assert shown["status"] == "scanned", shown
        assert shown["worst"] == "high"
        assert {f["advisory"] for f in shown["findings"]} == {
            "DSA-5514-1",
            "GHSA-j8r2-6x86-q33q",
            "GHSA-35jh-r3h4-6jhm",
        }
        referrers = http.get(f"/v2/app/web/referrers/{shown['digest']}").json()["manifests"]
        assert [(r["artifactType"], r["digest"]) for r in referrers] == [
            (REPORT_TYPE, shown["reportDigest"])
        ]
    [sent] = receiver.wait("/ok/scans", lambda got: len(got) >= 1)
    assert sent.body["action"] == "scan"
    assert sent.body["target"] == {"digest": shown["digest"], "repository": "app/web"}
    assert sent.body["scan"]["worst"] == "high" and sent.body["scan"]["findings"] == 3
    printed = dockyard(data_dir, "scan", "show", "app/web:1")
    assert "DSA-5514-1" in printed and "GHSA-35jh-r3h4-6jhm" in printed, printed

    dockyard(data_dir, "scan", "policy", "--enable", "--severity", "high")
    refused = skopeo("copy", *TLS_OFF, dest, f"oci:{tmp_path / 'back'}:1", check=False)
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower(), refused.stderr
    assert "DSA-5514-1 (high)" in refused.stderr, refused.stderr
    dockyard(data_dir, "scan", "policy", "--allow", "DSA-5514-1")
    refused = skopeo("copy", *TLS_OFF, dest, f"oci:{tmp_path / 'back'}:1", check=False)
    assert "GHSA-35jh-r3h4-6jhm (high) in lodash 4.17.15" in refused.stderr, refused.stderr
    allowed = ("--allow", "DSA-5514-1", "--allow", "CVE-2021-23337")  # lodash's, by alias
    dockyard(data_dir, "scan", "policy", *allowed)
    skopeo("copy", *TLS_OFF, dest, f"oci:{tmp_path / 'back'}:1")
