"""`management/api/cloud.py` in process, driven as az drives it against a custom cloud: the cloud
metadata document, the tenant's OpenID configuration, the token endpoint it names (MSAL's
exact form: `client_info`, `claims`, a scope with a double slash), refusals in OAuth's
shape, then the management API with the token (subscriptions with their tenant, the
registries found through `/resources`, a resource group written in lower case); and all
of it outside the registry's network rules."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from dockyard.app import create_app
from dockyard.metadata.network import NetworkWrites
from dockyard.services import Services

BASE = "https://dockyard.example:8443"
TENANT = "7b2a6c1e-Dock-Yard-0000-tenant000001"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
API = {"api-version": "2024-11-01"}
REGISTRIES_FILTER = {"$filter": "resourceType eq 'Microsoft.ContainerRegistry/registries'"}


@pytest.fixture
def services(make_services) -> Services:
    return make_services(
        registry={"default_name": "dockyard", "domain": "registry.example:8443"},
        management={"tenant_id": TENANT, "resource_group": "DockYard"},
    )


@pytest.fixture
def client(services: Services) -> tuple[str, str]:
    """An identity with the Owner role over the server: its client id and secret."""
    identity, secret = services.administration.create_identity("az-owner")
    services.administration.assign_role(None, identity.id, "Owner")
    return identity.id, secret


def requests(services: Services, *calls: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    """Each call (method, path, httpx keyword arguments) in order, to the app in process
    from 192.0.2.1 as `BASE`."""
    app = create_app(services, background=False)

    async def session() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            return [await http.request(method, path, **kw) for method, path, kw in calls]

    return asyncio.run(session())


def msal_form(client: tuple[str, str], scope: str) -> dict[str, str]:
    """What MSAL posts for `az login --service-principal`, field for field."""
    return {
        "client_id": client[0],
        "grant_type": "client_credentials",
        "client_info": "1",
        "client_secret": client[1],
        "claims": '{"access_token": {"xms_cc": {"values": ["CP1"]}}}',
        "scope": scope,
    }


def test_the_cloud_metadata_document_names_this_server(services: Services) -> None:
    # az appends the path to --endpoint-resource-manager as written, slash or not.
    document, after_a_slash = requests(
        services,
        ("GET", "/metadata/endpoints", {"params": API}),
        ("GET", f"{BASE}//metadata/endpoints", {"params": API}),
    )
    assert document.status_code == 200
    assert after_a_slash.json() == document.json()
    cloud = document.json()
    assert cloud["name"] == "Dockyard"
    assert cloud["resourceManager"] == BASE + "/"
    assert cloud["authentication"]["loginEndpoint"] == BASE + "/"
    assert cloud["authentication"]["audiences"][0] == BASE + "/"
    assert cloud["authentication"]["tenant"] == TENANT
    assert cloud["suffixes"] == {"acrLoginServer": "registry.example:8443"}


def test_the_tenant_s_openid_configuration(services: Services) -> None:
    path = "/{}/v2.0/.well-known/openid-configuration"
    # MSAL lower-cases the authority, tenant included.
    found, other = requests(
        services, ("GET", path.format(TENANT.lower()), {}), ("GET", path.format("contoso"), {})
    )
    assert found.status_code == 200
    configuration = found.json()
    assert configuration["token_endpoint"] == f"{BASE}/{TENANT}/oauth2/v2.0/token"
    assert configuration["authorization_endpoint"].startswith(f"{BASE}/{TENANT}/")
    assert configuration["jwks_uri"] == f"{BASE}/oauth2/jwks"
    assert other.status_code == 400
    assert other.json()["error"] == "invalid_tenant"
    assert other.json()["error_codes"] == [90002]


def test_az_logs_in_and_finds_its_registry(services: Services, client: tuple[str, str]) -> None:
    token_path = f"/{TENANT.lower()}/oauth2/v2.0/token"
    scope = BASE + "//.default"  # az: audiences[0] + "/.default"
    [issued] = requests(services, ("POST", token_path, {"data": msal_form(client, scope)}))
    assert issued.status_code == 200, issued.text
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    registry = (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/DockYard/providers/"
        "Microsoft.ContainerRegistry/registries/dockyard"
    )
    subscriptions, resources, other_type, bad_filter, found = requests(
        services,
        ("GET", "/subscriptions", {"params": API, "headers": bearer}),
        (
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resources",
            {"params": API | REGISTRIES_FILTER, "headers": bearer},
        ),
        (
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resources",
            {
                "params": API | {"$filter": "resourceType eq 'Microsoft.Compute/disks'"},
                "headers": bearer,
            },
        ),
        (
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resources",
            {"params": API | {"$filter": "name eq 'dockyard'"}, "headers": bearer},
        ),
        # az cuts the resource group out of the lower-cased id.
        ("GET", registry.replace("DockYard", "dockyard"), {"params": API, "headers": bearer}),
    )
    assert subscriptions.status_code == 200, subscriptions.text
    [subscription] = subscriptions.json()["value"]
    assert subscription["subscriptionId"] == SUBSCRIPTION
    assert subscription["tenantId"] == TENANT
    assert resources.status_code == 200, resources.text
    [resource] = resources.json()["value"]
    assert resource["name"] == "dockyard"
    assert resource["type"] == "Microsoft.ContainerRegistry/registries"
    assert resource["id"] == registry
    assert other_type.json() == {"value": []}
    assert bad_filter.status_code == 400
    assert bad_filter.json()["error"]["code"] == "InvalidFilterInQueryString"
    assert found.status_code == 200, found.text
    assert found.json()["properties"]["loginServer"] == "localhost:5000"


@pytest.mark.parametrize(
    "scope",
    [
        "https://management.azure.com/.default",
        "https://management.azure.com//.default",
        BASE + "/.default",
        "https://DOCKYARD.example:8443//.default",
    ],
)
def test_every_spelling_of_the_management_audience(
    services: Services, client: tuple[str, str], scope: str
) -> None:
    [issued] = requests(
        services, ("POST", "/oauth2/v2.0/token", {"data": msal_form(client, scope)})
    )
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    [listed] = requests(services, ("GET", "/subscriptions", {"params": API, "headers": bearer}))
    assert listed.status_code == 200, listed.text


def test_refusals_come_in_oauth_s_shape(services: Services, client: tuple[str, str]) -> None:
    scope = BASE + "//.default"
    wrong_secret, wrong_scope, wrong_grant, wrong_tenant = requests(
        services,
        ("POST", f"/{TENANT}/oauth2/v2.0/token", {"data": msal_form((client[0], "nope"), scope)}),
        (
            "POST",
            "/oauth2/v2.0/token",
            {"data": msal_form(client, "https://elsewhere.example//.default")},
        ),
        (
            "POST",
            "/oauth2/v2.0/token",
            {"data": msal_form(client, scope) | {"grant_type": "password"}},
        ),
        ("POST", "/contoso/oauth2/v2.0/token", {"data": msal_form(client, scope)}),
    )
    for response, status, error, number in (
        (wrong_secret, 401, "invalid_client", 7000215),
        (wrong_scope, 400, "invalid_scope", 70011),
        (wrong_grant, 400, "unsupported_grant_type", 70003),
        (wrong_tenant, 400, "invalid_tenant", 90002),
    ):
        assert response.status_code == status, response.text
        body = response.json()
        assert (body["error"], body["error_codes"]) == (error, [number])
        assert body["error_description"] and body["timestamp"]
        assert client[1] not in response.text
    assert "incorrect" in wrong_secret.json()["error_description"]


def test_discovery_and_login_stand_outside_the_network_rules(
    services: Services, client: tuple[str, str]
) -> None:
    registry = services.registries.for_host("")
    with services.meta.transaction() as tx:
        NetworkWrites(tx).set_access(registry.id, public_network_access=False)
    refused, document, configuration, issued = requests(
        services,
        ("GET", "/v2/", {}),
        ("GET", "/metadata/endpoints", {"params": API}),
        ("GET", f"/{TENANT.lower()}/v2.0/.well-known/openid-configuration", {}),
        (
            "POST",
            f"/{TENANT.lower()}/oauth2/v2.0/token",
            {"data": msal_form(client, BASE + "//.default")},
        ),
    )
    assert refused.status_code == 403
    assert document.status_code == 200
    assert configuration.status_code == 200
    assert issued.status_code == 200, issued.text


def test_a_resource_group_reads_as_az_acr_create_reads_it(
    services: Services, client: tuple[str, str]
) -> None:
    """`az acr create -g G` first GETs the group for its location: any group answers (a
    registry may be placed in any), spelled as a registry placed it if one is."""
    [issued] = requests(
        services, ("POST", "/oauth2/v2.0/token", {"data": msal_form(client, BASE + "//.default")})
    )
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    known, other, anonymous = requests(
        services,
        (
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resourcegroups/dockyard",
            {"params": API, "headers": bearer},
        ),
        (
            "GET",
            f"/subscriptions/{SUBSCRIPTION}/resourceGroups/builds",
            {"params": API, "headers": bearer},
        ),
        ("GET", f"/subscriptions/{SUBSCRIPTION}/resourcegroups/dockyard", {"params": API}),
    )
    assert known.status_code == 200, known.text
    assert known.json()["name"] == "DockYard"
    assert known.json()["id"] == f"/subscriptions/{SUBSCRIPTION}/resourceGroups/DockYard"
    assert known.json()["location"] == "local"
    assert (other.status_code, other.json()["name"]) == (200, "builds")
    assert anonymous.status_code == 401
