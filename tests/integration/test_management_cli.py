"""The online management verbs (`dockyard registry|credential|show-usage|network-rule|
webhook|scope-map|token|role assignment|logs ...`) as a user runs them, in this process
(Typer's CliRunner) talking to a real server's management API with logins on, as an identity that
`dockyard login` logged in (its refresh token buys the management token) or given as
`--client-id/--client-secret`; tables for people, `-o json` for scripts; and the
one-line refusals for an identity without a control role, the admin user and nobody."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import images
import pytest
import typer
from conftest import RegistryServer, printed, run_cli

from dockyard.cli.management import Management

pytestmark = pytest.mark.timeout(180)

ADMIN_PASSWORD = "admin-secret-for-management-cli"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    base = tmp_path_factory.mktemp("management-cli")
    with RegistryServer(
        base / "data",
        base / "dockyard.log",
        args=(),
        env={"DOCKYARD_ADMIN_PASSWORD": ADMIN_PASSWORD},
    ).start() as running:
        yield running


@pytest.fixture(scope="module")
def home(server: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's home after `dockyard login` as the server's Owner identity."""
    home = tmp_path_factory.mktemp("home")
    client_id, secret = server.owner()
    dockyard(home, "login", server.host, "-u", client_id, "-p", secret, "--insecure")
    return home


def dockyard(home: Path, *args: str, code: int = 0, stdin: str = "") -> str:
    """The CLI (in this process) with `home` as the user's home; it must exit with `code`
    and never print a traceback. Its stdout (stderr too when it fails)."""
    environment = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "DOCKER_CONFIG": str(home / "docker"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
    }
    result = run_cli(*args, env=environment, stdin=stdin)
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    return result.stdout if code == 0 else output


def as_json(home: Path, *args: str) -> object:
    return json.loads(dockyard(home, *args, "-o", "json"))


def test_registry_lifecycle(server, home) -> None:
    listed = as_json(home, "registry", "list")
    assert "dockyard" in [r["name"] for r in listed]
    taken = dockyard(home, "registry", "create", "-n", "dockyard", code=1)
    assert "AlreadyExists: The registry DNS name" in taken
    table = dockyard(home, "registry", "create", "-n", "clireg01", "--sku", "Basic")
    assert "clireg01" in table and "Basic" in table
    shown = as_json(home, "registry", "show", "-n", "clireg01")
    assert shown["sku"]["name"] == "Basic"
    assert shown["properties"]["adminUserEnabled"] is False
    # Found by its login server too, as az finds it.
    login_server = shown["properties"]["loginServer"]
    assert as_json(home, "registry", "show", "-n", login_server)["id"] == shown["id"]

    updated = as_json(
        home,
        "registry",
        "update",
        "-n",
        "clireg01",
        "--sku",
        "Premium",
        "--admin-enabled",
        "true",
        "--anonymous-pull-enabled",
        "true",
        "--tags",
        "team=ci",
    )
    assert updated["sku"]["name"] == "Premium" and updated["tags"] == {"team": "ci"}
    assert updated["properties"]["anonymousPullEnabled"] is True

    credentials = as_json(home, "credential", "show", "-n", "clireg01")
    assert credentials["username"] == "clireg01"
    before = {p["name"]: p["value"] for p in credentials["passwords"]}
    renewed = as_json(home, "credential", "renew", "-n", "clireg01", "--password-name", "password2")
    after = {p["name"]: p["value"] for p in renewed["passwords"]}
    assert after["password"] == before["password"] and after["password2"] != before["password2"]

    usage = {u["name"]: u for u in as_json(home, "show-usage", "-n", "clireg01")["value"]}
    assert usage["Size"]["currentValue"] == 0
    assert "CURRENT VALUE" in dockyard(home, "show-usage", "-n", "clireg01")

    dockyard(home, "network-rule", "add", "-n", "clireg01", "--ip-address", "10.1.2.3")
    dockyard(home, "network-rule", "add", "-n", "clireg01", "--ip-address", "10.9.0.0/16")
    rules = as_json(home, "network-rule", "list", "-n", "clireg01")
    assert [r["value"] for r in rules["ipRules"]] == ["10.1.2.3", "10.9.0.0/16"]
    dockyard(home, "network-rule", "remove", "-n", "clireg01", "--ip-address", "10.1.2.3/32")
    denied = as_json(home, "registry", "update", "-n", "clireg01", "--default-action", "Deny")
    network = denied["properties"]["networkRuleSet"]
    assert network == {
        "defaultAction": "Deny",
        "ipRules": [{"action": "Allow", "value": "10.9.0.0/16"}],
    }
    missing = dockyard(
        home, "network-rule", "remove", "-n", "clireg01", "--ip-address", "10.1.2.3", code=1
    )
    assert "has no rule 10.1.2.3" in missing

    refused = dockyard(home, "registry", "delete", "-n", "clireg01", code=1, stdin="n\n")
    assert "nothing deleted" in refused
    assert "deleted registry clireg01" in dockyard(
        home, "registry", "delete", "-n", "clireg01", "-y"
    )
    assert "clireg01" not in [r["name"] for r in as_json(home, "registry", "list")]
    gone = dockyard(home, "registry", "show", "-n", "clireg01", code=1)
    assert "no registry 'clireg01'" in gone and "\n" not in gone.strip()


def test_registries_are_found_in_any_subscription(server, home) -> None:
    elsewhere = ("--subscription", "22222222-3333-4444-5555-666666666666")
    dockyard(home, "registry", "create", "-n", "clireg03", "-g", "teams", *elsewhere)
    found = as_json(home, "registry", "show", "-n", "clireg03")  # no --subscription needed
    assert found["id"].startswith(f"/subscriptions/{elsewhere[1]}/resourceGroups/teams/")
    assert "clireg03" in [r["name"] for r in as_json(home, "registry", "list")]
    by_url = ("--server", f"http://{server.host}/")  # a URL works too; http: no TLS
    assert as_json(home, "registry", "show", "-n", "clireg03", *by_url)["id"] == found["id"]
    default = ("--subscription", "00000000-0000-0000-0000-000000000000")
    assert "clireg03" not in [r["name"] for r in as_json(home, "registry", "list", *default)]
    missing = dockyard(home, "registry", "show", "-n", "clireg03", *default, code=1)
    assert "no registry 'clireg03' in subscription 00000000-" in missing
    dockyard(home, "registry", "delete", "-n", "clireg03", "--yes")


def test_lifecycle_policies(home) -> None:
    retention = ("config", "retention")
    shown = json.loads(dockyard(home, *retention, "show", "-r", "dockyard"))
    assert shown["status"] == "disabled"
    on = json.loads(
        dockyard(home, *retention, "update", "-r", "dockyard", "--status", "enabled", "--days", "3")
    )
    assert (on["status"], on["days"]) == ("enabled", 3)
    both = dockyard(
        home, "config", "soft-delete", "update", "-r", "dockyard", "--status", "enabled", code=1
    )
    assert both.startswith("error: ") and "retention" in both  # they exclude each other
    dockyard(home, *retention, "update", "-r", "dockyard", "--status", "disabled")
    soft = (
        "config",
        "soft-delete",
        "update",
        "-r",
        "dockyard",
        "--status",
        "enabled",
        "--days",
        "9",
    )
    assert json.loads(dockyard(home, *soft))["retentionDays"] == 9
    shown = json.loads(dockyard(home, "config", "soft-delete", "show", "-r", "dockyard"))
    assert shown["status"] == "enabled"
    dockyard(home, "config", "soft-delete", "update", "-r", "dockyard", "--status", "disabled")
    nothing = dockyard(home, *retention, "update", "-r", "dockyard", code=1)
    assert "nothing to change" in nothing


def test_webhook_verbs(home) -> None:
    uri = "http://127.0.0.1:9/hook"  # nothing listens: the ping records the failure
    created = as_json(
        home,
        "webhook",
        "create",
        "-n",
        "clihook1",
        "-r",
        "dockyard",
        "--uri",
        uri,
        "--actions",
        "push,delete",
        "--headers",
        "X-Secret=abc",
        "--scope",
        "app:*",
    )
    assert created[0]["properties"]["actions"] == ["push", "delete"]
    assert "clihook1" in dockyard(home, "webhook", "list", "-r", "dockyard")
    config = as_json(home, "webhook", "get-config", "-n", "clihook1", "-r", "dockyard")
    assert config == {"serviceUri": uri, "customHeaders": {"X-Secret": "abc"}}
    updated = as_json(
        home, "webhook", "update", "-n", "clihook1", "-r", "dockyard", "--status", "disabled"
    )
    assert updated[0]["properties"]["status"] == "disabled"
    assert as_json(home, "webhook", "show", "-n", "clihook1", "-r", "dockyard")[0]["name"] == (
        "clihook1"
    )
    pinged = as_json(home, "webhook", "ping", "-n", "clihook1", "-r", "dockyard")
    events = as_json(home, "webhook", "list-events", "-n", "clihook1", "-r", "dockyard")
    assert pinged["id"] in [e["id"] for e in events]
    table = dockyard(home, "webhook", "list-events", "-n", "clihook1", "-r", "dockyard")
    assert pinged["id"] in table and "ping" in table
    dockyard(home, "webhook", "delete", "-n", "clihook1", "-r", "dockyard")
    missing = dockyard(home, "webhook", "show", "-n", "clihook1", "-r", "dockyard", code=1)
    assert "not found" in missing


def test_scope_map_and_token_verbs(server, home) -> None:
    dockyard(
        home,
        "scope-map",
        "create",
        "-n",
        "cli-readers",
        "-r",
        "dockyard",
        "--repository",
        "apps/* content/read",
        "--description",
        "read apps",
    )
    updated = as_json(
        home,
        "scope-map",
        "update",
        "-n",
        "cli-readers",
        "-r",
        "dockyard",
        "--add-repository",
        "apps/* metadata/read",
    )
    assert updated[0]["properties"]["actions"] == [
        "repositories/apps/*/content/read",
        "repositories/apps/*/metadata/read",
    ]
    assert "cli-readers" in dockyard(home, "scope-map", "list", "-r", "dockyard")

    made = dockyard(
        home, "token", "create", "-n", "cli-bot", "-r", "dockyard", "--scope-map", "cli-readers"
    )
    password = printed(made, "password1")
    again = ("token", "create", "-n", "cli-bot", "-r", "dockyard", "--scope-map", "cli-readers")
    assert "token cli-bot exists already" in dockyard(home, *again, code=1)
    pull = {"service": server.host, "scope": "repository:apps/x:pull"}
    token = httpx.get(f"{server.url}/oauth2/token", params=pull, auth=("cli-bot", password))
    assert token.status_code == 200, token.text

    disabled = as_json(
        home, "token", "update", "-n", "cli-bot", "-r", "dockyard", "--status", "disabled"
    )
    assert disabled[0]["properties"]["status"] == "disabled"
    refused = httpx.get(f"{server.url}/oauth2/token", params=pull, auth=("cli-bot", password))
    assert refused.status_code == 401
    dockyard(home, "token", "update", "-n", "cli-bot", "-r", "dockyard", "--status", "enabled")
    renewed = as_json(
        home, "token", "credential", "generate", "-n", "cli-bot", "-r", "dockyard", "--password1"
    )
    assert [p["name"] for p in renewed["passwords"]] == ["password1"]
    new_password = renewed["passwords"][0]["value"]
    assert (
        httpx.get(
            f"{server.url}/oauth2/token", params=pull, auth=("cli-bot", new_password)
        ).status_code
        == 200
    )
    shown = as_json(home, "token", "show", "-n", "cli-bot", "-r", "dockyard")
    assert shown[0]["properties"]["scopeMapId"].endswith("/scopeMaps/cli-readers")
    assert "cli-bot" in dockyard(home, "token", "list", "-r", "dockyard")
    in_use = dockyard(home, "scope-map", "delete", "-n", "cli-readers", "-r", "dockyard", code=1)
    assert "used by a token" in in_use
    dockyard(home, "token", "delete", "-n", "cli-bot", "-r", "dockyard")
    dockyard(home, "scope-map", "delete", "-n", "cli-readers", "-r", "dockyard")
    assert "cli-readers" not in dockyard(home, "scope-map", "list", "-r", "dockyard")


def test_role_assignment_verbs_and_refusals(server, home, tmp_path) -> None:
    output = server.admin("identity", "create", "cli-builder")
    client = (
        "--client-id",
        printed(output, "username"),
        "--client-secret",
        printed(output, "secret"),
    )
    # No control role yet: refused, with what to do.
    refused = dockyard(
        tmp_path,
        "registry",
        "create",
        "-n",
        "clireg02",
        "--server",
        server.host,
        "--insecure",
        *client,
        code=1,
    )
    assert "AuthorizationFailed" in refused and "role assignment create" in refused

    created = as_json(
        home,
        "role",
        "assignment",
        "create",
        "--assignee",
        "cli-builder",
        "--role",
        "AcrPull",
        "-r",
        "dockyard",
        "--repository",
        "team/*",
    )
    assert created[0]["properties"]["roleDefinitionName"] == "AcrPull"
    reader = as_json(
        home,
        "role",
        "assignment",
        "create",
        "--assignee",
        "cli-builder",
        "--role",
        "Reader",
        "-r",
        "dockyard",
    )
    listed = dockyard(home, "role", "assignment", "list", "-r", "dockyard")
    assert "cli-builder" in listed and "team/*" in listed and "Reader" in listed
    # The data role covers team/* only, as ACR's ABAC condition says.
    identity = httpx.post(
        f"{server.url}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client[1],
            "client_secret": client[3],
        },
    )
    assert identity.status_code == 200

    # Reader may read the registry, not change it.
    as_client = ("--server", server.host, "--insecure", *client)
    assert as_json(tmp_path, "registry", "show", "-n", "dockyard", *as_client)["name"] == "dockyard"
    write = dockyard(
        tmp_path, "registry", "update", "-n", "dockyard", "--tags", "a=b", *as_client, code=1
    )
    assert "AuthorizationFailed" in write

    dockyard(home, "role", "assignment", "delete", "--id", reader[0]["name"], "-r", "dockyard")
    gone = dockyard(tmp_path, "registry", "show", "-n", "dockyard", *as_client, code=1)
    assert "no registry 'dockyard'" in gone
    missing = dockyard(home, "role", "assignment", "delete", "--id", reader[0]["name"], code=1)
    assert "no role assignment" in missing


def test_management_needs_an_identity(server, tmp_path) -> None:
    nobody = dockyard(tmp_path, "registry", "list", "--server", server.host, "--insecure", code=1)
    assert "dockyard login" in nobody and "--client-id" in nobody
    dockyard(tmp_path, "login", server.host, "-u", "dockyard", "-p", ADMIN_PASSWORD, "--insecure")
    admin = dockyard(tmp_path, "registry", "list", code=1)  # the server login remembered
    assert "only an identity's refresh token" in admin


def test_logs_query(server, home) -> None:
    wrong = httpx.get(
        f"{server.url}/oauth2/token", params={"service": server.host}, auth=("dockyard", "x")
    )
    assert wrong.status_code == 401
    failed = ("logs", "query", "-r", "dockyard", "--kind", "login", "--result", "401")
    rows = as_json(home, *failed)
    assert rows and all(str(row["ResultType"]) == "401" for row in rows)
    lines = dockyard(home, *failed, "-o", "jsonl", "--top", "1").splitlines()
    assert [json.loads(line) for line in lines] == rows[:1]
    assert "TimeGenerated" in dockyard(home, *failed)
    bad = dockyard(home, "logs", "query", "-r", "dockyard", "--since", "yesterday", code=1)
    assert "InvalidRequestContent" in bad


def test_long_running_operations_are_followed_to_their_end(server, capsys) -> None:
    """The CLI's client follows ARM's 202 + Location (importImage's) until it ends: done,
    or failed with the operation's error as one line."""
    image = images.busybox_image("arm64")
    with httpx.Client(base_url=server.url, auth=("dockyard", ADMIN_PASSWORD)) as http:
        for blob in image.blobs.values():
            digest = images.sha256_digest(blob)
            assert http.post(f"/v2/lro/src/blobs/uploads/?digest={digest}", content=blob).is_success
        headers = {"Content-Type": image.media_type}
        assert http.put(
            "/v2/lro/src/manifests/1", content=image.manifest, headers=headers
        ).is_success
    client_id, secret = server.owner()
    with Management(server.host, None, client_id, secret, insecure=True) as api:
        url = api.registry_url("dockyard")
        body = {"source": {"resourceId": url, "sourceImage": "lro/src:1"}}
        body["targetTags"] = ["lro/copy:1"]
        done = api.call("POST", f"{url}/importImage", json=body)  # 202, polled, 200
        assert done["status"] == "Succeeded" and done["properties"]["targets"] == ["lro/copy:1"]
        body["source"]["sourceImage"] = "lro/src:missing"
        with pytest.raises(typer.Exit):
            api.call("POST", f"{url}/importImage", json=body)
    printed_error = capsys.readouterr().out.strip()
    assert printed_error.startswith("error: MANIFEST_UNKNOWN: ")
    assert "\n" not in printed_error
    with httpx.Client(base_url=server.url, auth=("dockyard", ADMIN_PASSWORD)) as http:
        copied = http.get("/v2/lro/copy/manifests/1", headers={"Accept": image.media_type})
        assert copied.status_code == 200 and copied.content == image.manifest


def test_a_registry_firewall_never_locks_out_its_managers(server, home) -> None:
    """Tokens for the management API come from /oauth2/v2.0/token, which, like the
    management API and as Entra ID on Azure, no registry's network rules guard."""
    registry = ("registry", "update", "-n", "dockyard")
    dockyard(home, *registry, "--default-action", "Deny")
    try:
        refused = httpx.get(f"{server.url}/v2/", auth=("dockyard", ADMIN_PASSWORD))
        assert refused.status_code == 403  # the registry: closed to this address
        shown = as_json(home, "registry", "show", "-n", "dockyard")  # a new process, token
        assert shown["properties"]["networkRuleSet"]["defaultAction"] == "Deny"
    finally:
        dockyard(home, *registry, "--default-action", "Allow")
