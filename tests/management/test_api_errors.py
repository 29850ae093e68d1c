"""The management API's refusals in process: a body or query it cannot read is ARM's 400
naming what is wrong, with nothing stored changed; any path or method under
`/subscriptions/` and `/providers/` that the server does not serve is answered in ARM's
error shape (`{"error": {"code", "message"}}`), never the registry API's; and the
provider's operation list says what the server serves."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from management_paths import REGISTRY, SUBSCRIPTION, VERSION

from dockyard.app import create_app
from dockyard.common.errors import MetadataUnavailable, StorageUnavailable
from dockyard.management.registry_resources import RegistryChange, parse_network_rule_set
from dockyard.services import Services


def _requests(services: Services, *calls: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    """Each (method, path, httpx keyword arguments) in turn, in process."""
    app = create_app(services, background=False)

    async def session() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            return [
                await http.request(method, path, **({"params": VERSION} | options))
                for method, path, options in calls
            ]

    return asyncio.run(session())


def _arm_error(answer: httpx.Response, status: int) -> dict[str, str]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"code", "message"} and error["message"], error
    return error


@pytest.mark.parametrize(
    ("properties", "field"),
    [
        ({"publicNetworkAccess": {"k": 1}}, "properties.publicNetworkAccess"),
        ({"policies": {"retentionPolicy": {"status": []}}}, "properties.policies.retentionPolicy"),
        ({"adminUserEnabled": "yes", "publicNetworkAccess": "Disabled"}, "adminUserEnabled"),
        ({"networkRuleSet": {"ipRules": [{"value": 5}]}}, "properties.networkRuleSet.ipRules.0"),
    ],
)
def test_a_registry_patch_of_the_wrong_json_type_is_a_400_naming_the_field(
    services: Services, properties: dict[str, Any], field: str
) -> None:
    before, refused, after = _requests(
        services,
        ("GET", REGISTRY, {}),
        ("PATCH", REGISTRY, {"json": {"properties": properties}}),
        ("GET", REGISTRY, {}),
    )
    error = _arm_error(refused, 400)
    assert error["code"] == "InvalidRequestContent"
    assert field in error["message"]
    assert after.json() == before.json()


def test_a_webhook_put_with_headers_that_are_not_an_object_is_a_400(services: Services) -> None:
    hook = f"{REGISTRY}/webhooks/hookone"
    body = {
        "location": "westeurope",
        "properties": {
            "serviceUri": "http://127.0.0.1:9/hook",
            "actions": ["push"],
            "customHeaders": [""],
        },
    }
    refused, listed = _requests(
        services, ("PUT", hook, {"json": body}), ("GET", f"{REGISTRY}/webhooks", {})
    )
    error = _arm_error(refused, 400)
    assert error["code"] == "InvalidRequestContent"
    assert "properties.customHeaders" in error["message"]
    assert listed.json()["value"] == []


@pytest.mark.parametrize(
    "since",
    ["99999999d", "9999999999999999999999h", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59-01:00"],
)
def test_a_logs_bound_out_of_range_is_a_400(services: Services, since: str) -> None:
    [refused] = _requests(
        services, ("GET", f"{REGISTRY}/logs", {"params": VERSION | {"since": since}})
    )
    assert _arm_error(refused, 400)["code"] == "InvalidRequestContent"


def test_the_provider_s_operations_are_listed_in_arm_s_shape(services: Services) -> None:
    [answer] = _requests(services, ("GET", "/providers/Microsoft.ContainerRegistry/operations", {}))
    assert answer.status_code == 200, answer.text
    operations = answer.json()["value"]
    names = {operation["name"] for operation in operations}
    for name in (
        "Microsoft.ContainerRegistry/operations/read",
        "Microsoft.ContainerRegistry/checkNameAvailability/read",
        "Microsoft.ContainerRegistry/registries/read",
        "Microsoft.ContainerRegistry/registries/write",
        "Microsoft.ContainerRegistry/registries/delete",
        "Microsoft.ContainerRegistry/registries/importImage/action",
        "Microsoft.ContainerRegistry/registries/webhooks/ping/action",
        "Microsoft.ContainerRegistry/registries/tokens/write",
        "Microsoft.ContainerRegistry/registries/cacheRules/read",
        "Microsoft.ContainerRegistry/registries/replications/write",
        "Microsoft.ContainerRegistry/registries/tasks/write",
        "Microsoft.ContainerRegistry/registries/scheduleRun/action",
    ):
        assert name in names
    assert not any("agentPools" in name for name in names)  # not served
    for operation in operations:
        assert operation["isDataAction"] is False and operation["origin"] == "user,system"
        display = operation["display"]
        assert display["provider"] == "Microsoft.ContainerRegistry"
        assert display["resource"] and display["operation"] and display["description"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/providers/Microsoft.Compute/operations", "NoRegisteredProviderFound"),
        ("/providers/Microsoft.ContainerRegistry/nothing", "InvalidResourceType"),
        ("/providers", "ResourceNotFound"),
        (
            f"{SUBSCRIPTION}/resourceGroups/dockyard/providers/Microsoft.Compute/disks/a",
            "NoRegisteredProviderFound",
        ),
        (f"{REGISTRY}/agentPools/pool", "InvalidResourceType"),
        (f"{REGISTRY}/webhooks/hookone/nothing", "InvalidResourceType"),
        (f"{SUBSCRIPTION}/nothing/at/all", "ResourceNotFound"),
    ],
)
def test_a_path_the_server_does_not_serve_is_arm_s_404(
    services: Services, path: str, code: str
) -> None:
    for answer in _requests(services, ("GET", path, {}), ("PUT", path, {"json": {}})):
        assert _arm_error(answer, 404)["code"] == code


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", f"{REGISTRY}/listUsages", "GET, HEAD"),
        ("OPTIONS", REGISTRY, "DELETE, GET, HEAD, PATCH, PUT"),
        ("POST", f"{REGISTRY}/webhooks", "GET, HEAD"),
        ("PUT", "/subscriptions", "GET, HEAD"),
        ("POST", "/providers/Microsoft.ContainerRegistry/operations", "GET, HEAD"),
    ],
)
def test_a_method_a_management_path_does_not_serve_is_arm_s_405(
    services: Services, method: str, path: str, allowed: str
) -> None:
    [answer] = _requests(services, (method, path, {}))
    assert _arm_error(answer, 405)["code"] == "MethodNotAllowed"
    assert answer.headers["Allow"] == allowed


def test_no_registry_s_firewall_stands_before_the_provider_s_paths(services: Services) -> None:
    resources = services.registry_resources
    registry = services.registries.for_host("")
    change = RegistryChange(sku="Premium", network_rule_set=parse_network_rule_set("Deny", []))
    resources.update(resources.placement_of(registry), registry.name, change)
    listed, unknown, refused = _requests(
        services,
        ("GET", "/providers/Microsoft.ContainerRegistry/operations", {}),
        ("GET", "/providers/Microsoft.Compute/operations", {}),
        ("GET", "/v2/", {}),
    )
    assert listed.status_code == 200
    assert _arm_error(unknown, 404)["code"] == "NoRegisteredProviderFound"
    assert refused.status_code == 403  # the registry API is behind it


@pytest.mark.parametrize(
    "uri", ["http://[::1", "http://127.0.0.1:99999/hook", "http://a:port/", "http://a:0/"]
)
def test_a_webhook_service_uri_that_is_no_url_is_a_400(services: Services, uri: str) -> None:
    body = {"location": "westeurope", "properties": {"serviceUri": uri, "actions": ["push"]}}
    refused, listed = _requests(
        services,
        ("PUT", f"{REGISTRY}/webhooks/hookone", {"json": body}),
        ("GET", f"{REGISTRY}/webhooks", {}),
    )
    assert _arm_error(refused, 400)["code"] == "BadRequest"
    assert listed.json()["value"] == []


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (f"{REGISTRY}/webhooks/hookone/listEvents", {"$skipToken": "99999999999999999999999"}),
        (f"{REGISTRY}/webhooks/hookone/listEvents", {"$skipToken": "²"}),
        (f"{REGISTRY}/webhooks", {"$top": "²"}),
    ],
)
def test_a_page_query_that_is_no_number_the_database_holds_is_a_400(
    services: Services, path: str, query: dict[str, str]
) -> None:
    hook = {
        "location": "westeurope",
        "properties": {"serviceUri": "http://127.0.0.1:9/", "actions": ["push"]},
    }
    made, refused = _requests(
        services,
        ("PUT", f"{REGISTRY}/webhooks/hookone", {"json": hook}),
        ("POST" if path.endswith("listEvents") else "GET", path, {"params": VERSION | query}),
    )
    assert made.status_code == 201
    assert _arm_error(refused, 400)["code"] == "InvalidRequestContent"


@pytest.mark.parametrize(
    ("failure", "status", "code"),
    [
        (RuntimeError("secret detail"), 500, "InternalServerError"),
        (MetadataUnavailable(), 503, "ServiceUnavailable"),
        (StorageUnavailable(), 503, "ServiceUnavailable"),
    ],
)
def test_a_failure_nobody_handled_is_arm_s_error_too(
    services: Services, monkeypatch: pytest.MonkeyPatch, failure: Exception, status: int, code: str
) -> None:
    def broken(*args: object) -> None:
        raise failure

    monkeypatch.setattr(services.registry_resources, "find", broken)
    [answer] = _requests(services, ("GET", REGISTRY, {}))
    assert _arm_error(answer, status)["code"] == code
    assert "secret detail" not in answer.text


@pytest.mark.parametrize("version", ["١٢", "2025-11-01\r\nX: y", "latest", "2025-11-01-"])
def test_an_api_version_that_is_no_date_is_a_400(services: Services, version: str) -> None:
    """It is never echoed (importImage's Location names it): a value no header can hold
    failed the answer after the import had started."""
    body = {
        "source": {"resourceId": REGISTRY, "sourceImage": "app:v1"},
        "targetTags": ["copy:v1"],
    }
    refused, operations = _requests(
        services,
        ("POST", f"{REGISTRY}/importImage", {"params": {"api-version": version}, "json": body}),
        ("GET", f"{REGISTRY}/listUsages", {"params": {"api-version": version}}),
    )
    for answer in (refused, operations):
        assert _arm_error(answer, 400)["code"] == "InvalidApiVersionParameter"


def test_preview_api_versions_are_taken(services: Services) -> None:
    for version in ("2025-03-01-preview", "2019-12-01-Preview"):
        [answer] = _requests(services, ("GET", REGISTRY, {"params": {"api-version": version}}))
        assert answer.status_code == 200


def test_a_token_password_s_expiry_is_kept_as_the_moment_it_names(services: Services) -> None:
    """An offset is converted to UTC, not dropped; a moment UTC cannot hold is a 400."""
    scope_map = {"properties": {"actions": ["repositories/app/content/read"]}}
    token = {"properties": {"scopeMapId": f"{REGISTRY}/scopeMaps/mapone"}}

    def generate(expiry: str) -> tuple[str, str, dict[str, Any]]:
        body = {"tokenId": f"{REGISTRY}/tokens/tokenone", "name": "password1", "expiry": expiry}
        return ("POST", f"{REGISTRY}/generateCredentials", {"json": body})

    answers = _requests(
        services,
        ("PUT", f"{REGISTRY}/scopeMaps/mapone", {"json": scope_map}),
        ("PUT", f"{REGISTRY}/tokens/tokenone", {"json": token}),
        generate("2030-01-01T00:00:00+02:00"),
        generate("2031-01-01T00:00:00"),
        generate("9999-12-31T23:59:59-23:59"),
        ("GET", f"{REGISTRY}/tokens/tokenone", {}),
    )
    shifted, naive, refused, shown = answers[2:]
    assert shifted.json()["passwords"][0]["expiry"] == "2029-12-31T22:00:00Z"
    assert naive.json()["passwords"][0]["expiry"] == "2031-01-01T00:00:00Z"
    assert _arm_error(refused, 400)["code"] == "InvalidRequestContent"
    [password1] = [
        p
        for p in shown.json()["properties"]["credentials"]["passwords"]
        if p["name"] == "password1"
    ]
    assert password1["expiry"] == "2031-01-01T00:00:00Z"


def test_a_token_update_that_leaves_a_password_out_deletes_it(services: Services) -> None:
    """As `az acr token credential delete --password2` asks: the passwords to keep."""
    scope_map = {"properties": {"actions": ["repositories/app/content/read"]}}
    token = {"properties": {"scopeMapId": f"{REGISTRY}/scopeMaps/mapdrop"}}
    keep_one = {"properties": {"credentials": {"passwords": [{"name": "password1"}]}}}
    answers = _requests(
        services,
        ("PUT", f"{REGISTRY}/scopeMaps/mapdrop", {"json": scope_map}),
        ("PUT", f"{REGISTRY}/tokens/tokendrop", {"json": token}),
        ("PATCH", f"{REGISTRY}/tokens/tokendrop", {"json": keep_one}),
        ("PATCH", f"{REGISTRY}/tokens/tokendrop", {"json": {"properties": {"status": "enabled"}}}),
        (
            "PATCH",
            f"{REGISTRY}/tokens/tokendrop",
            {"json": {"properties": {"credentials": {"passwords": [{"name": 1}]}}}},
        ),
    )
    created, kept, untouched, refused = answers[1:]
    names = [p["name"] for p in created.json()["properties"]["credentials"]["passwords"]]
    assert names == ["password1", "password2"]
    for answer in (kept, untouched):
        passwords = answer.json()["properties"]["credentials"]["passwords"]
        assert [p["name"] for p in passwords] == ["password1"]
    assert "credentials.passwords.0.name" in _arm_error(refused, 400)["message"]


@pytest.mark.parametrize("server", ["💥", "host name", "a:99999", "http://upstream", ""])
def test_a_credential_set_for_no_registry_host_is_a_400(services: Services, server: str) -> None:
    credential = {
        "name": "Credential1",
        "usernameSecretIdentifier": "user",
        "passwordSecretIdentifier": "secret",
    }
    body = {"properties": {"loginServer": server, "authCredentials": [credential]}}
    refused, listed = _requests(
        services,
        ("PUT", f"{REGISTRY}/credentialSets/upstream", {"json": body}),
        ("GET", f"{REGISTRY}/credentialSets", {}),
    )
    assert _arm_error(refused, 400)["code"] in {"InvalidParameter", "InvalidRequestContent"}
    assert listed.json()["value"] == []
