"""`dockyard repository ...` and `dockyard check-health` as a user runs them, in this
process (Typer's CliRunner) talking over HTTP to a real server that requires logins, with
credentials given as flags or stored by `dockyard login`; tables for people and `-o json`
for scripts."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
from conftest import RegistryServer, free_port, run_cli

pytestmark = pytest.mark.timeout(120)

ADMIN = ("dockyard", "admin-secret-for-cli")


class SecuredServer(RegistryServer):
    """A server with logins on; the push helpers log in as its admin user."""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, auth=ADMIN)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredServer]:
    base = tmp_path_factory.mktemp("cli")
    secured = SecuredServer(
        base / "data", base / "dockyard.log", args=(), env={"DOCKYARD_ADMIN_PASSWORD": ADMIN[1]}
    ).start()
    try:
        yield secured
    finally:
        secured.stop()


@pytest.fixture(scope="module")
def pushed(server: SecuredServer) -> dict[str, images.Image]:
    """`cli/app`: `v1` (amd64) and `v2` (arm64); `cli/other`: `latest`."""
    amd, arm = images.busybox_image("amd64"), images.busybox_image("arm64")
    server.push_image("cli/app", amd, "v1")
    server.push_image("cli/app", arm, "v2")
    server.push_image("cli/other", amd, "latest")
    return {"v1": amd, "v2": arm}


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A user's home with no stored logins."""
    return tmp_path


def dockyard(
    home: Path, *args: str, code: int = 0, login: bool = True, stdin: str = ""
) -> subprocess.CompletedProcess:
    """The CLI (in this process), with the admin's credentials as flags unless `login` is
    false; it must exit with `code` and never print a traceback."""
    env = {
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / "docker"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
    }
    credentials = ("-u", ADMIN[0], "-p", ADMIN[1]) if login else ()
    result = run_cli(*args, *credentials, env=env, stdin=stdin)
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    return result


def as_json(result: subprocess.CompletedProcess) -> object:
    return json.loads(result.stdout)


def test_list_and_show(server, pushed, home) -> None:
    table = dockyard(home, "repository", "list", "-n", server.host, "--insecure").stdout
    assert "cli/app" in table and "cli/other" in table
    names = as_json(
        dockyard(home, "repository", "list", "-n", server.host, "--insecure", "-o", "json")
    )
    assert {"cli/app", "cli/other"} <= set(names)
    shown = dockyard(
        home, "repository", "show", "-n", server.host, "--insecure", "--repository", "cli/app"
    )
    assert "manifestCount" in shown.stdout and "none (all enabled)" in shown.stdout
    body = as_json(
        dockyard(
            home,
            "repository",
            "show",
            "-n",
            server.host,
            "--insecure",
            "--repository",
            "cli/app",
            "-o",
            "json",
        )
    )
    assert (body["imageName"], body["tagCount"], body["manifestCount"]) == ("cli/app", 2, 2)
    tag = as_json(
        dockyard(
            home,
            "repository",
            "show",
            "-n",
            server.host,
            "--insecure",
            "--image",
            "cli/app:v1",
            "-o",
            "json",
        )
    )
    assert tag["tag"]["digest"] == pushed["v1"].digest
    by_digest = as_json(
        dockyard(
            home,
            "repository",
            "show",
            "-n",
            server.host,
            "--insecure",
            "--image",
            f"cli/app@{pushed['v2'].digest}",
            "-o",
            "json",
        )
    )
    assert by_digest["manifest"]["architecture"] == "arm64"
    missing = dockyard(
        home,
        "repository",
        "show",
        "-n",
        server.host,
        "--insecure",
        "--repository",
        "cli/none",
        code=1,
    )
    assert "not found" in missing.stdout and len(missing.stdout.strip().splitlines()) == 1


def test_show_tags_and_manifests(server, pushed, home) -> None:
    target = ("-n", server.host, "--insecure", "--repository", "cli/app")
    assert as_json(dockyard(home, "repository", "show-tags", *target, "-o", "json")) == ["v1", "v2"]
    newest = dockyard(
        home,
        "repository",
        "show-tags",
        *target,
        "--orderby",
        "time_desc",
        "--top",
        "1",
        "-o",
        "json",
    )
    assert as_json(newest) == ["v2"]
    table = dockyard(home, "repository", "show-tags", *target, "--detail").stdout
    assert pushed["v1"].digest in table

    manifests = as_json(
        dockyard(
            home, "repository", "show-manifests", *target, "--orderby", "time_asc", "-o", "json"
        )
    )
    assert [m["tags"] for m in manifests] == [["v1"], ["v2"]]
    table = dockyard(home, "repository", "show-manifests", *target, "--detail").stdout
    assert "linux/arm64" in table and pushed["v2"].digest in table


def test_a_locked_tag_refuses_untag_with_the_servers_message(server, pushed, home) -> None:
    target = ("-n", server.host, "--insecure")
    locked = as_json(
        dockyard(
            home,
            "repository",
            "update",
            *target,
            "--image",
            "cli/other:latest",
            "--write-enabled",
            "false",
            "-o",
            "json",
        )
    )
    assert locked["tag"]["changeableAttributes"]["writeEnabled"] is False
    refused = dockyard(home, "repository", "untag", *target, "--image", "cli/other:latest", code=1)
    assert "writeEnabled=false" in refused.stdout and "lacks permission" in refused.stdout
    assert len(refused.stdout.strip().splitlines()) == 1
    shown = dockyard(
        home,
        "repository",
        "update",
        *target,
        "--image",
        "cli/other:latest",
        "--write-enabled",
        "true",
    )
    assert "none (all enabled)" in shown.stdout
    assert (
        "untagged cli/other:latest"
        in dockyard(home, "repository", "untag", *target, "--image", "cli/other:latest").stdout
    )


def test_delete_asks_first_and_deletes(server, pushed, home) -> None:
    server.push_image("cli/doomed", pushed["v1"], "a")
    server.push_image("cli/doomed", pushed["v2"], "b")
    target = ("-n", server.host, "--insecure")
    kept = dockyard(
        home, "repository", "delete", *target, "--repository", "cli/doomed", stdin="n\n", code=1
    )
    assert "nothing deleted" in kept.stdout
    image = dockyard(home, "repository", "delete", *target, "--image", "cli/doomed:a", "--yes")
    assert pushed["v1"].digest in image.stdout
    everything = as_json(
        dockyard(
            home,
            "repository",
            "delete",
            *target,
            "--repository",
            "cli/doomed",
            "--yes",
            "-o",
            "json",
        )
    )
    assert everything == {"manifestsDeleted": [pushed["v2"].digest], "tagsDeleted": ["b"]}


def test_credentials_stored_by_dockyard_login_and_none(server, pushed, home) -> None:
    anonymous = dockyard(
        home, "repository", "list", "-n", server.host, "--insecure", login=False, code=1
    )
    assert f"run dockyard login {server.host}" in anonymous.stdout
    dockyard(home, "login", server.host, "--insecure")
    listed = dockyard(
        home, "repository", "list", "-n", server.host, "--insecure", "-o", "json", login=False
    )
    assert "cli/app" in as_json(listed)


def test_check_health(server, pushed, home) -> None:
    healthy = dockyard(home, "check-health", "-n", server.host, "--insecure", "-o", "json")
    checks = {check["name"]: check for check in as_json(healthy)}
    assert {name: check["status"] for name, check in checks.items()} == {
        "DNS lookup": "ok",
        "connection": "ok",
        "TLS certificate": "skipped",
        "/v2/ API": "ok",
        "token service": "ok",
        "credentials": "ok",
        "/readyz": "ok",
        "clock skew": "ok",
    }
    table = dockyard(home, "check-health", "-n", server.host, "--insecure").stdout
    assert "/readyz" in table and "failed" not in table

    closed = dockyard(home, "check-health", "-n", f"127.0.0.1:{free_port()}", "--insecure", code=1)
    assert "connection" in closed.stdout and "failed" in closed.stdout
    assert "start `dockyard serve` there" in closed.stdout
    untrusted = dockyard(home, "check-health", "-n", server.host, code=1, login=False).stdout
    assert "a plain-HTTP development server needs --insecure" in untrusted
