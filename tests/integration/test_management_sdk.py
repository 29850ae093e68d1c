"""The management API (ARM-shaped) driven by Microsoft's `azure-mgmt-containerregistry`,
unchanged, over TLS with a `DockyardCredential`: registries (create, get, list, update,
delete), admin credentials, name checks, scope maps and tokens; role assignments and
the error shapes over raw HTTP (the SDK has no role assignments). Each registry it makes
is a real one: served at its login server, and gone, bytes and all, once deleted."""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import uuid
from typing import ClassVar

import httpx
import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import (
    AuthCredential,
    CacheRule,
    CacheRuleUpdateParameters,
    CredentialSet,
    CredentialSetUpdateParameters,
    CredentialSetUpdateProperties,
    GenerateCredentialsParameters,
    ImportImageParameters,
    ImportSource,
    IPRule,
    NetworkRuleSet,
    Policies,
    RegenerateCredentialParameters,
    Registry,
    RegistryNameCheckRequest,
    RegistryUpdateParameters,
    RetentionPolicy,
    ScopeMap,
    ScopeMapUpdateParameters,
    Sku,
    Token,
    TokenUpdateParameters,
    WebhookCreateParameters,
    WebhookUpdateParameters,
)
from conftest import RegistryServer, printed

from dockyard.credentials import DockyardCredential

SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
GROUP = "builds"
API = {"api-version": "2025-11-01"}
PROVIDER = "providers/Microsoft.ContainerRegistry"
READER_ROLE = "acdd72a7-3c48-4a8f-9e2c-ef1c6dafab0b"
CONTRIBUTOR_ROLE = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER_ROLE = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("arm")
    running = RegistryServer(base / "data", base / "dockyard.log", tls=True, args=()).start()
    try:
        yield running
    finally:
        running.stop()


def _identity(server: RegistryServer, name: str, *roles: str) -> tuple[str, DockyardCredential]:
    """A new identity with `roles` (over the whole server): its id and an SDK credential."""
    output = server.admin("identity", "create", name)
    for role in roles:
        server.manage("role", "assignment", "create", "--assignee", name, "--role", role)
    credential = DockyardCredential(
        server.url, printed(output, "username"), printed(output, "secret"), str(server.ca_file)
    )
    return printed(output, "username"), credential


@pytest.fixture(scope="module")
def owner(server):
    return _identity(server, "arm-owner", "Owner")


@pytest.fixture(scope="module")
def reader(server):
    return _identity(server, "arm-reader")


def _client(server: RegistryServer, credential: DockyardCredential):
    return ContainerRegistryManagementClient(
        credential, SUBSCRIPTION, base_url=server.url, connection_verify=str(server.ca_file)
    )


def _http(server: RegistryServer, credential: DockyardCredential | None) -> httpx.Client:
    headers = {}
    if credential is not None:
        token = credential.get_token("https://management.azure.com/.default").token
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=server.url, verify=server.verify, headers=headers, timeout=30)


def _group_path(group: str = GROUP) -> str:
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{group}/{PROVIDER}"


def _basic(username: str, password: str) -> dict[str, str]:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    }


def test_registry_lifecycle_through_the_sdk(server, owner, reader) -> None:
    sdk = _client(server, owner[1])
    registries = sdk.registries
    name, login_server = "armbuilds", f"armbuilds.localhost:{server.port}"

    free = registries.check_name_availability(
        RegistryNameCheckRequest(name=name, type="Microsoft.ContainerRegistry/registries")
    )
    assert free.name_available
    taken = registries.check_name_availability(
        RegistryNameCheckRequest(name="dockyard", type="Microsoft.ContainerRegistry/registries")
    )
    assert (taken.name_available, taken.reason) == (False, "AlreadyExists")

    created = registries.begin_create(
        GROUP,
        name,
        Registry(
            location="westeurope",
            sku=Sku(name="Premium"),
            tags={"team": "builds"},
            admin_user_enabled=True,
        ),
    ).result()
    assert created.id == f"{_group_path()}/registries/{name}"
    assert (created.login_server, created.provisioning_state) == (login_server, "Succeeded")
    assert (created.location, created.tags, created.sku.name) == (
        "westeurope",
        {"team": "builds"},
        "Premium",
    )
    assert created.admin_user_enabled and not created.anonymous_pull_enabled
    assert registries.get(GROUP, name).login_server == login_server
    assert [r.name for r in registries.list_by_resource_group(GROUP)] == [name]
    assert name in [r.name for r in registries.list()]
    with pytest.raises(ResourceNotFoundError):
        registries.get("another-group", name)

    updated = registries.begin_update(
        GROUP,
        name,
        RegistryUpdateParameters(
            tags={"team": "platform"},
            anonymous_pull_enabled=True,
            network_rule_set=NetworkRuleSet(
                default_action="Deny",
                ip_rules=[IPRule(ip_address_or_range="127.0.0.0/8", action="Allow")],
            ),
            policies=Policies(retention_policy=RetentionPolicy(days=3, status="enabled")),
        ),
    ).result()
    assert updated.tags == {"team": "platform"} and updated.anonymous_pull_enabled
    assert updated.network_rule_set.default_action == "Deny"
    assert [r.ip_address_or_range for r in updated.network_rule_set.ip_rules] == ["127.0.0.0/8"]
    assert (updated.policies.retention_policy.days, updated.policies.retention_policy.status) == (
        3,
        "enabled",
    )

    # The admin user's credentials log in to the new registry, found by its login server.
    credentials = registries.list_credentials(GROUP, name)
    assert credentials.username == name
    password = {p.name: p.value for p in credentials.passwords}["password"]
    with _http(server, None) as http:
        host = {"Host": login_server}
        assert http.get("/v2/", headers=host | _basic(name, password)).status_code == 200
        renewed = registries.regenerate_credential(
            GROUP, name, RegenerateCredentialParameters(name="password")
        )
        new_password = {p.name: p.value for p in renewed.passwords}["password"]
        assert new_password != password
        assert http.get("/v2/", headers=host | _basic(name, password)).status_code == 401
        digest = _push_blob(http, host | _basic(name, new_password), b"layer bytes")

    usages = {u.name: u for u in registries.list_usages(GROUP, name).value}
    assert (usages["IPRules"].current_value, usages["IPRules"].limit) == (1, 200)
    assert usages["Size"].unit == "Bytes" and usages["Size"].current_value == len(b"layer bytes")
    with pytest.raises(HttpResponseError) as refused:  # Basic has no IP rules
        registries.begin_update(GROUP, name, RegistryUpdateParameters(sku=Sku(name="Basic")))
    assert refused.value.status_code == 403

    _scope_maps_and_tokens(sdk, server, name, login_server)
    _webhooks(sdk, name)

    blob_file = server.data_dir / "blobs" / name / "blobs" / "sha256" / digest[7:9] / digest[7:]
    assert blob_file.exists()
    registries.begin_delete(GROUP, name).result()
    with pytest.raises(ResourceNotFoundError):
        registries.get(GROUP, name)
    assert not blob_file.exists()
    registries.begin_delete(GROUP, name).result()  # nothing left: 204, still a success


def _push_blob(http: httpx.Client, headers: dict[str, str], data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    response = http.post(f"/v2/app/blobs/uploads/?digest={digest}", headers=headers, content=data)
    assert response.status_code == 201, response.text
    return digest


def _push_image(http: httpx.Client, headers: dict[str, str], tag: str, marker: str) -> str:
    """A tiny OCI image in repository `app` (its config says `marker`): its digest."""
    config = json.dumps({"marker": marker}).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": _push_blob(http, headers, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": _push_blob(http, headers, b"layer bytes"),
                "size": len(b"layer bytes"),
            }
        ],
    }
    body = json.dumps(manifest).encode()
    content_type = {"Content-Type": manifest["mediaType"]}
    pushed = http.put(f"/v2/app/manifests/{tag}", headers=headers | content_type, content=body)
    assert pushed.status_code == 201, pushed.text
    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_import_image_is_long_running_through_the_sdk(server, owner) -> None:
    sdk = _client(server, owner[1])
    registries, logins = sdk.registries, {}
    for name in ("armsource", "armtarget"):
        created = registries.begin_create(
            GROUP,
            name,
            Registry(location="westeurope", sku=Sku(name="Premium"), admin_user_enabled=True),
        ).result()
        password = registries.list_credentials(GROUP, name).passwords[0].value
        logins[name] = {"Host": created.login_server} | _basic(name, password)
    source_id = f"{_group_path()}/registries/armsource"
    with _http(server, None) as http:
        first = _push_image(http, logins["armsource"], "v1", "first")
        second = _push_image(http, logins["armsource"], "v2", "second")

        def begin(image: str, *targets: str, force: bool = False, untagged=()):
            return registries.begin_import_image(
                GROUP,
                "armtarget",
                ImportImageParameters(
                    source=ImportSource(resource_id=source_id, source_image=image),
                    target_tags=list(targets),
                    untagged_target_repositories=list(untagged),
                    mode="Force" if force else "NoForce",
                ),
                polling_interval=0.1,
            )

        begin("app:v1", "copied:v1", untagged=["bydigest"]).result()
        target = logins["armtarget"]
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        copied = http.get("/v2/copied/manifests/v1", headers=target | accept)
        assert copied.status_code == 200, copied.text
        assert copied.headers["Docker-Content-Digest"] == first
        by_digest = http.get(f"/v2/bydigest/manifests/{first}", headers=target | accept)
        assert by_digest.status_code == 200

        # The initial answer is 202 with a Location any node can answer.
        initial = begin("app:v2", "copied:v2", force=True)
        assert initial.polling_method()._initial_response.http_response.status_code == 202
        initial.result()
        moved = http.get("/v2/copied/manifests/v2", headers=target | accept)
        assert moved.headers["Docker-Content-Digest"] == second

        failures = {
            "Conflict": lambda: begin("app:v2", "copied:v1").result(),  # NoForce
            "MANIFEST_UNKNOWN": lambda: begin("app:v9", "copied:v9").result(),
        }
        for code, attempt in failures.items():
            with pytest.raises(HttpResponseError) as failed:
                attempt()
            assert failed.value.error.code == code, failed.value
        still = http.get("/v2/copied/manifests/v1", headers=target | accept)
        assert still.headers["Docker-Content-Digest"] == first
    with pytest.raises(HttpResponseError) as refused:  # checked before the 202
        begin("app:v1")
    assert refused.value.status_code == 400

    # A Contributor of the target alone may not copy from the source, named either way.
    importer_id, importer = _identity(server, "arm-importer")
    _assign(server, owner, f"{_group_path()}/registries/armtarget", "Contributor", importer_id)
    importer_sdk = _client(server, importer)
    source_login = logins["armsource"]["Host"]
    for source in (
        ImportSource(resource_id=source_id, source_image="app:v1"),
        ImportSource(registry_uri=source_login, source_image="app:v1"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            importer_sdk.registries.begin_import_image(
                GROUP,
                "armtarget",
                ImportImageParameters(source=source, target_tags=["stolen:v1"]),
                polling_interval=0.1,
            )
        assert refused.value.status_code == 403
    for name in ("armsource", "armtarget"):
        registries.begin_delete(GROUP, name).result()


def _assign(server: RegistryServer, owner, scope: str, role: str, principal: str) -> None:
    """`role` (Owner, Contributor or Reader) on `scope`, through the management API."""
    role_ids = {"Owner": OWNER_ROLE, "Contributor": CONTRIBUTOR_ROLE, "Reader": READER_ROLE}
    url = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}"
    body = {
        "properties": {
            "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/"
            f"Microsoft.Authorization/roleDefinitions/{role_ids[role]}",
            "principalId": principal,
        }
    }
    with _http(server, owner[1]) as http:
        made = http.put(url, params=API, json=body)
        assert made.status_code == 201, made.text


def _scope_maps_and_tokens(sdk, server: RegistryServer, name: str, login_server: str) -> None:
    scope_map = sdk.scope_maps.begin_create(
        GROUP,
        name,
        "pullers",
        ScopeMap(actions=["repositories/app/content/read"], description="pull app"),
    ).result()
    assert scope_map.type == "Microsoft.ContainerRegistry/registries/scopeMaps"
    assert (scope_map.properties.type, scope_map.provisioning_state) == ("UserDefined", "Succeeded")
    changed = sdk.scope_maps.begin_update(
        GROUP,
        name,
        "pullers",
        ScopeMapUpdateParameters(
            actions=["repositories/app/content/read", "repositories/app/metadata/read"]
        ),
    ).result()
    assert changed.description == "pull app" and len(changed.actions) == 2
    assert [m.name for m in sdk.scope_maps.list(GROUP, name)] == ["pullers"]

    token = sdk.tokens.begin_create(
        GROUP, name, "ci-puller", Token(scope_map_id=scope_map.id, status="enabled")
    ).result()
    assert token.scope_map_id == scope_map.id and token.status == "enabled"
    generated = sdk.registries.begin_generate_credentials(
        GROUP, name, GenerateCredentialsParameters(token_id=token.id, name="password1")
    ).result()
    assert generated.username == "ci-puller"
    password = generated.passwords[0].value
    assert generated.passwords[0].name == "password1" and password

    with _http(server, None) as http:
        headers = {"Host": login_server} | _basic("ci-puller", password)
        query = {"service": login_server, "scope": "repository:app:pull,push"}
        issued = http.get("/oauth2/token", params=query, headers=headers)
        assert issued.status_code == 200
        sdk.tokens.begin_update(
            GROUP, name, "ci-puller", TokenUpdateParameters(status="disabled")
        ).result()
        assert sdk.tokens.get(GROUP, name, "ci-puller").status == "disabled"
        assert http.get("/oauth2/token", params=query, headers=headers).status_code == 401

    assert [t.name for t in sdk.tokens.list(GROUP, name)] == ["ci-puller"]
    sdk.tokens.begin_delete(GROUP, name, "ci-puller").result()
    sdk.scope_maps.begin_delete(GROUP, name, "pullers").result()
    with pytest.raises(ResourceNotFoundError):
        sdk.tokens.get(GROUP, name, "ci-puller")


class _Receiver(http.server.BaseHTTPRequestHandler):
    """A webhook's receiver: answers every POST with 200 and keeps its body."""

    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def _webhooks(sdk, name: str) -> None:
    receiver = http.server.HTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    uri = f"http://127.0.0.1:{receiver.server_port}/hook"
    try:
        hook = sdk.webhooks.begin_create(
            GROUP,
            name,
            "onpush",
            WebhookCreateParameters(
                location="westeurope",
                service_uri=uri,
                custom_headers={"Authorization": "Bearer s3cret"},
                actions=["push"],
                scope="app:*",
            ),
        ).result()
        assert (hook.status, hook.scope, hook.actions) == ("enabled", "app:*", ["push"])
        config = sdk.webhooks.get_callback_config(GROUP, name, "onpush")
        assert config.service_uri == uri
        assert config.custom_headers == {"Authorization": "Bearer s3cret"}
        updated = sdk.webhooks.begin_update(
            GROUP, name, "onpush", WebhookUpdateParameters(actions=["push", "delete"])
        ).result()
        assert updated.actions == ["push", "delete"]
        event = sdk.webhooks.ping(GROUP, name, "onpush")
        assert event.id and _Receiver.bodies
        events = list(sdk.webhooks.list_events(GROUP, name, "onpush"))
        assert events[0].id == event.id
        assert events[0].event_response_message.status_code == "200"
        assert [w.name for w in sdk.webhooks.list(GROUP, name)] == ["onpush"]
        sdk.webhooks.begin_delete(GROUP, name, "onpush").result()
        with pytest.raises(ResourceNotFoundError):
            sdk.webhooks.get(GROUP, name, "onpush")
    finally:
        receiver.shutdown()


def test_a_tier_s_limits_are_arm_errors_the_sdk_raises(server, owner) -> None:
    sdk = _client(server, owner[1])
    name = "armbasic"
    sdk.registries.begin_create(
        GROUP, name, Registry(location="westeurope", sku=Sku(name="Basic"))
    ).result()
    hook = WebhookCreateParameters(
        location="westeurope", service_uri="http://127.0.0.1:9/hook", actions=["push"]
    )
    for webhook in ("hookone", "hooktwo"):
        sdk.webhooks.begin_create(GROUP, name, webhook, hook).result()
    refusals = {
        "has 2 webhooks, as many as its Basic tier allows (2)": lambda: sdk.webhooks.begin_create(
            GROUP, name, "hookthree", hook
        ),
        "does not allow anonymous pull": lambda: sdk.registries.begin_update(
            GROUP, name, RegistryUpdateParameters(anonymous_pull_enabled=True)
        ),
        "does not allow the retention policy": lambda: sdk.registries.begin_update(
            GROUP,
            name,
            RegistryUpdateParameters(
                policies=Policies(retention_policy=RetentionPolicy(days=3, status="enabled"))
            ),
        ),
    }
    for message, attempt in refusals.items():
        with pytest.raises(HttpResponseError) as refused:
            attempt()
        assert refused.value.status_code == 403
        assert refused.value.error.code == "QuotaExceeded"
        assert message in refused.value.error.message
    assert [w.name for w in sdk.webhooks.list(GROUP, name)] == ["hookone", "hooktwo"]
    assert not sdk.registries.get(GROUP, name).anonymous_pull_enabled
    sdk.registries.begin_delete(GROUP, name).result()


def test_cache_rules_and_credential_sets_through_the_sdk(server, owner) -> None:
    sdk = _client(server, owner[1])
    name = "armcache"
    sdk.registries.begin_create(
        GROUP, name, Registry(location="westeurope", sku=Sku(name="Standard"))
    ).result()
    upstream = "127.0.0.1:5999"
    login = CredentialSet(
        login_server=upstream,
        auth_credentials=[
            AuthCredential(
                name="Credential1",
                username_secret_identifier="puller",
                password_secret_identifier="s3cret",
            )
        ],
    )
    made = sdk.credential_sets.begin_create(GROUP, name, "upstreamlogin", login).result()
    assert (made.login_server, made.provisioning_state) == (upstream, "Succeeded")
    [credential] = made.auth_credentials
    assert credential.username_secret_identifier == "puller"
    assert credential.password_secret_identifier is None  # never shown again
    renewed = sdk.credential_sets.begin_update(
        GROUP,
        name,
        "upstreamlogin",
        CredentialSetUpdateParameters(
            properties=CredentialSetUpdateProperties(
                auth_credentials=[
                    AuthCredential(name="Credential1", password_secret_identifier="new")
                ]
            )
        ),
    ).result()
    assert renewed.auth_credentials[0].username_secret_identifier == "puller"

    rule = sdk.cache_rules.begin_create(
        GROUP,
        name,
        "busybox-cache",
        CacheRule(
            source_repository=f"{upstream}/library/busybox",
            target_repository="busybox",
            credential_set_resource_id=made.id,
        ),
    ).result()
    assert rule.type == "Microsoft.ContainerRegistry/registries/cacheRules"
    assert (rule.source_repository, rule.target_repository) == (
        f"{upstream}/library/busybox",
        "busybox",
    )
    assert rule.credential_set_resource_id == made.id
    assert sdk.cache_rules.get(GROUP, name, "busybox-cache").credential_set_resource_id == made.id
    with pytest.raises(HttpResponseError) as refused:  # its source is fixed
        sdk.cache_rules.begin_create(
            GROUP,
            name,
            "busybox-cache",
            CacheRule(source_repository=f"{upstream}/library/other", target_repository="busybox"),
        ).result()
    assert refused.value.status_code == 400
    with pytest.raises(HttpResponseError) as refused:  # a rule uses it
        sdk.credential_sets.begin_delete(GROUP, name, "upstreamlogin").result()
    assert "busybox-cache" in refused.value.error.message
    updated = sdk.cache_rules.begin_update(
        GROUP, name, "busybox-cache", CacheRuleUpdateParameters(credential_set_resource_id=made.id)
    ).result()
    assert updated.credential_set_resource_id == made.id
    assert [c.name for c in sdk.credential_sets.list(GROUP, name)] == ["upstreamlogin"]

    sdk.cache_rules.begin_delete(GROUP, name, "busybox-cache").result()
    sdk.credential_sets.begin_delete(GROUP, name, "upstreamlogin").result()
    with pytest.raises(ResourceNotFoundError):
        sdk.cache_rules.get(GROUP, name, "busybox-cache")
    with pytest.raises(ResourceNotFoundError):
        sdk.credential_sets.get(GROUP, name, "upstreamlogin")
    sdk.registries.begin_delete(GROUP, name).result()


def test_lists_page_with_next_links_the_sdk_follows(server, owner) -> None:
    """`$top` (a Dockyard extension) makes pages small; the SDK's pager follows each
    `nextLink` to the end."""
    sdk = _client(server, owner[1])
    name, top = "armpages", {"params": {"$top": "2"}}
    sdk.registries.begin_create(
        GROUP, name, Registry(location="westeurope", sku=Sku(name="Premium"))
    ).result()
    hook = WebhookCreateParameters(
        location="westeurope", service_uri="http://127.0.0.1:9/hook", actions=["push"]
    )
    scope_maps = ["pages-a", "pages-b", "pages-c"]
    for item in scope_maps:
        sdk.webhooks.begin_create(GROUP, name, item.replace("-", ""), hook).result()
        made = sdk.scope_maps.begin_create(
            GROUP, name, item, ScopeMap(actions=["repositories/app/content/read"])
        ).result()
        sdk.tokens.begin_create(GROUP, name, f"{item}-token", Token(scope_map_id=made.id)).result()
        sdk.cache_rules.begin_create(
            GROUP,
            name,
            f"{item}-rule",
            CacheRule(source_repository=f"127.0.0.1:5999/{item}", target_repository=item),
        ).result()
        sdk.credential_sets.begin_create(
            GROUP,
            name,
            f"{item}-login",
            CredentialSet(
                login_server=f"{item}.example",
                auth_credentials=[
                    AuthCredential(username_secret_identifier="u", password_secret_identifier="p")
                ],
            ),
        ).result()
    for _ in range(3):
        sdk.webhooks.ping(GROUP, name, "pagesa")

    assert [m.name for m in sdk.scope_maps.list(GROUP, name, **top)] == scope_maps
    assert [t.name for t in sdk.tokens.list(GROUP, name, **top)] == [
        f"{item}-token" for item in scope_maps
    ]
    assert [w.name for w in sdk.webhooks.list(GROUP, name, **top)] == ["pagesa", "pagesb", "pagesc"]
    assert [r.name for r in sdk.cache_rules.list(GROUP, name, **top)] == [
        f"{item}-rule" for item in scope_maps
    ]
    assert [c.name for c in sdk.credential_sets.list(GROUP, name, **top)] == [
        f"{item}-login" for item in scope_maps
    ]
    events = list(sdk.webhooks.list_events(GROUP, name, "pagesa", **top))
    assert len(events) == 3 == len({e.id for e in events})
    registries = sorted(r.name for r in sdk.registries.list_by_resource_group(GROUP))
    paged = [r.name for r in sdk.registries.list_by_resource_group(GROUP, params={"$top": "1"})]
    assert len(registries) >= 1 and paged == registries
    assert [r.name for r in sdk.registries.list(params={"$top": "1"})] == sorted(
        r.name for r in sdk.registries.list()
    )

    with _http(server, owner[1]) as http:
        path = f"{_group_path()}/registries/{name}/scopeMaps"
        first = http.get(path, params=API | {"$top": "2"}).json()
        assert [m["name"] for m in first["value"]] == scope_maps[:2]
        second = http.get(first["nextLink"]).json()
        assert [m["name"] for m in second["value"]] == scope_maps[2:]
        assert "nextLink" not in second
        _error(http.get(path, params=API | {"$top": "0"}), 400, "InvalidRequestContent")
    sdk.registries.begin_delete(GROUP, name).result()


def test_role_assignments_decide_who_manages_what(server, owner, reader) -> None:
    owner_sdk, reader_sdk = _client(server, owner[1]), _client(server, reader[1])
    name = "armteam"
    owner_sdk.registries.begin_create(
        GROUP, name, Registry(location="westeurope", sku=Sku(name="Standard"))
    ).result()
    with pytest.raises(HttpResponseError) as refused:
        reader_sdk.registries.get(GROUP, name)
    assert refused.value.status_code == 403 and refused.value.error.code == "AuthorizationFailed"

    scope = f"{_group_path()}/registries/{name}"
    assignment = str(uuid.uuid4())
    url = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{assignment}"
    with _http(server, owner[1]) as http:
        body = {
            "properties": {
                "roleDefinitionId": f"/subscriptions/{SUBSCRIPTION}/providers/"
                f"Microsoft.Authorization/roleDefinitions/{READER_ROLE}",
                "principalId": reader[0],
            }
        }
        made = http.put(url, params=API, json=body)
        assert made.status_code == 201, made.text
        assert made.json()["properties"]["scope"] == scope
        assert made.json()["properties"]["principalType"] == "ServicePrincipal"
        assert http.put(url, params=API, json=body).status_code == 409
        listed = http.get(
            f"{scope}/providers/Microsoft.Authorization/roleAssignments", params=API
        ).json()["value"]
        assert [a["name"] for a in listed] == [assignment]

        # A Reader reads this registry, and only this one, and changes nothing.
        assert reader_sdk.registries.get(GROUP, name).name == name
        assert [r.name for r in reader_sdk.registries.list()] == [name]
        for attempt in (
            lambda: reader_sdk.registries.begin_update(
                GROUP, name, RegistryUpdateParameters(admin_user_enabled=True)
            ),
            lambda: reader_sdk.registries.list_credentials(GROUP, name),
            lambda: reader_sdk.registries.begin_create(
                GROUP, "armmine", Registry(location="westeurope", sku=Sku(name="Basic"))
            ),
            lambda: reader_sdk.registries.begin_delete(GROUP, name),
        ):
            with pytest.raises(HttpResponseError) as refused:
                attempt()
            assert refused.value.status_code == 403
        with _http(server, reader[1]) as reader_http:
            assert reader_http.delete(url, params=API).status_code == 403

        assert http.delete(url, params=API).status_code == 200
        assert http.delete(url, params=API).status_code == 204
    with pytest.raises(HttpResponseError) as refused:
        reader_sdk.registries.get(GROUP, name)
    assert refused.value.status_code == 403
    owner_sdk.registries.begin_delete(GROUP, name).result()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    return error["message"]


def test_errors_have_arms_shape(server, owner) -> None:
    registry = f"{_group_path()}/registries"
    default = (
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/"
        f"{PROVIDER}/registries/dockyard"
    )
    with _http(server, owner[1]) as http:
        _error(http.get(default), 400, "MissingApiVersionParameter")
        assert http.get(default, params=API).json()["properties"]["loginServer"] == server.host
        _error(http.get(f"{registry}/nosuchregistry", params=API), 404, "ResourceNotFound")
        _error(http.get(f"{registry}/nosuchregistry/webs", params=API), 404, "InvalidResourceType")
        _error(
            http.get(f"{registry}/nosuchregistry/webhooks/a/b", params=API),
            404,
            "InvalidResourceType",
        )
        _error(
            http.get("/providers/Microsoft.Nowhere/operations", params=API),
            404,
            "NoRegisteredProviderFound",
        )
        _error(http.post(f"{registry}/nosuchregistry", params=API), 405, "MethodNotAllowed")
        _error(
            http.put(f"{registry}/armbad", params=API, content=b"{"), 400, "InvalidRequestContent"
        )
        _error(
            http.put(f"{registry}/armbad", params=API, json={"sku": {"name": "Basic"}}),
            400,
            "InvalidRequestContent",
        )
        _error(
            http.put(
                f"{registry}/ab", params=API, json={"location": "x", "sku": {"name": "Basic"}}
            ),
            400,
            "BadRequest",
        )
        _error(
            http.put(
                f"{registry}/dockyard",
                params=API,
                json={"location": "x", "sku": {"name": "Basic"}},
            ),
            409,
            "Conflict",
        )
        _error(http.delete(default, params=API), 400, "BadRequest")
    with _http(server, None) as anonymous:
        refused = anonymous.get(default, params=API)
        _error(refused, 401, "AuthenticationFailed")
        assert refused.headers["WWW-Authenticate"].startswith("Bearer ")
        data_plane = owner[1].get_token("https://containerregistry.azure.net/.default").token
        wrong = anonymous.get(
            default, params=API, headers={"Authorization": f"Bearer {data_plane}"}
        )
        _error(wrong, 401, "AuthenticationFailed")


# -- what the dockyard CLI relies on -----------------------------------------------------------

DEFAULT_REGISTRY = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/dockyard/"
    f"{PROVIDER}/registries/dockyard"
)


def test_subscriptions_and_resource_groups_list_the_default_first(server, owner) -> None:
    with _http(server, None) as anonymous:
        _error(anonymous.get("/subscriptions", params=API), 401, "AuthenticationFailed")
    with _http(server, owner[1]) as http:
        subscriptions = http.get("/subscriptions", params=API)
        assert subscriptions.status_code == 200, subscriptions.text
        first = subscriptions.json()["value"][0]
        assert first["subscriptionId"] == "00000000-0000-0000-0000-000000000000"
        assert first["id"] == "/subscriptions/00000000-0000-0000-0000-000000000000"
        groups = http.get(f"{first['id']}/resourcegroups", params=API).json()["value"]
        assert groups[0]["name"] == "dockyard" and groups[0]["location"] == "local"


def test_an_identity_s_refresh_token_buys_a_management_token(server, owner) -> None:
    """At /oauth2/v2.0/token (Entra's shape), as an Entra refresh token buys tokens for
    ARM: one `dockyard login` serves both planes."""
    credentials = server.admin("identity", "create", "arm-login")
    client_id, secret = printed(credentials, "username"), printed(credentials, "secret")
    scope = "https://management.azure.com/.default"

    def refresh(username: str, password: str) -> str:
        login = {"grant_type": "password", "service": server.host, "access_type": "offline"}
        login |= {"username": username, "password": password}
        answer = httpx.post(f"{server.url}/oauth2/token", data=login, verify=server.verify)
        assert answer.status_code == 200, answer.text
        return answer.json()["refresh_token"]

    def management(form: dict[str, str]) -> httpx.Response:
        url = f"{server.url}/oauth2/v2.0/token"
        return httpx.post(url, data=form, verify=server.verify)

    by_secret = {"grant_type": "client_credentials", "client_id": client_id}
    by_secret |= {"client_secret": secret, "scope": scope}
    assert management(by_secret).status_code == 200
    no_scope = management({**by_secret, "scope": "repository:app:pull"})
    assert no_scope.status_code == 400 and "scope must be one of" in no_scope.text
    by_refresh = {"grant_type": "refresh_token", "scope": scope}
    bought = management({**by_refresh, "refresh_token": refresh(client_id, secret)})
    assert bought.status_code == 200, bought.text
    bearer = {"Authorization": f"Bearer {bought.json()['access_token']}"}
    with httpx.Client(base_url=server.url, verify=server.verify, headers=bearer) as http:
        assert http.get("/subscriptions", params=API).status_code == 200
        _error(http.get(DEFAULT_REGISTRY, params=API), 403, "AuthorizationFailed")  # no role

    # The admin user is no identity: refused, saying why.
    admin_password = printed(server.manage("credential", "show", "-n", "dockyard"), "password")
    refused = management({**by_refresh, "refresh_token": refresh("dockyard", admin_password)})
    assert refused.status_code == 401
    assert "only an identity's refresh token" in refused.json()["errors"][0]["message"]


def test_role_assignments_limited_to_repositories_carry_acr_s_condition(server, owner) -> None:
    server.admin("identity", "create", "arm-puller")
    attribute = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]"
    url = f"{DEFAULT_REGISTRY}/providers/Microsoft.Authorization/roleAssignments"
    with _http(server, owner[1]) as http:
        for condition, repository in (
            (f"{attribute} StringStartsWithIgnoreCase 'team/'", "team/*"),
            (f"{attribute} StringEqualsIgnoreCase 'solo/app'", "solo/app"),
        ):
            body = {"properties": {"roleDefinitionId": "AcrPull", "principalId": "arm-puller"}}
            body["properties"] |= {"condition": condition, "conditionVersion": "2.0"}
            made = http.put(f"{url}/{uuid.uuid4()}", params=API, json=body)
            assert made.status_code == 201, made.text
            properties = made.json()["properties"]
            assert properties["condition"] == condition
            assert (properties["roleDefinitionName"], properties["principalName"]) == (
                "AcrPull",
                "arm-puller",
            )
            assert repository in server.manage("role", "assignment", "list", "-r", "dockyard")
        body = {"properties": {"roleDefinitionId": "AcrPull", "principalId": "arm-puller"}}
        body["properties"]["condition"] = f"{attribute} StringLike 'x*'"
        _error(
            http.put(f"{url}/{uuid.uuid4()}", params=API, json=body), 400, "InvalidRequestContent"
        )


def test_a_registry_s_own_storage_quota_is_a_patch(server, owner) -> None:
    """Dockyard's extension: `properties.storageQuotaBytes`; listUsages' Size shows it."""

    def size_limit(http: httpx.Client) -> int:
        usages = http.get(f"{DEFAULT_REGISTRY}/listUsages", params=API).json()["value"]
        return next(u["limit"] for u in usages if u["name"] == "Size")

    with _http(server, owner[1]) as http:
        tier = size_limit(http)
        quota = {"properties": {"storageQuotaBytes": 123456789}}
        assert http.patch(DEFAULT_REGISTRY, params=API, json=quota).status_code == 200
        assert size_limit(http) == 123456789
        back = {"properties": {"storageQuotaBytes": None}}
        assert http.patch(DEFAULT_REGISTRY, params=API, json=back).status_code == 200
        assert size_limit(http) == tier
        bad = {"properties": {"storageQuotaBytes": "lots"}}
        _error(http.patch(DEFAULT_REGISTRY, params=API, json=bad), 400, "InvalidRequestContent")


def test_the_provider_s_operations_list_through_the_sdk(server, owner) -> None:
    operations = list(_client(server, owner[1]).operations.list())
    names = {operation.name for operation in operations}
    assert {
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/importImage/action",
        "Microsoft.ContainerRegistry/registries/webhooks/write",
    } <= names
    assert all(operation.display.provider == PROVIDER.split("/")[-1] for operation in operations)
