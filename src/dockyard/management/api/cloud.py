"""What an Azure client of a custom cloud reads before it logs in, so that an unchanged
`az` works with this server's URL alone (`az cloud register --endpoint-resource-manager`,
then `az login --service-principal --tenant`):

- `GET /metadata/endpoints`: ARM's cloud metadata document, one cloud (also at
  `//metadata/endpoints`, where az looks when `--endpoint-resource-manager` ends in a
  slash: it appends the path to the URL as written): this server is its
  resource manager and its login endpoint (the authority MSAL asks for tokens), its own
  URL its management audience (`api/oauth2.py` sells identity tokens for it), and the
  domain of the registries' login servers (`[registry] domain`) its ACR suffix, which az
  checks `-n NAME.SUFFIX` against;
- `GET /{tenant}/v2.0/.well-known/openid-configuration`: the tenant's OpenID
  configuration, where MSAL finds the token endpoint;
- `POST /{tenant}/oauth2/v2.0/token`: the identity token endpoint under the tenant's path.

The tenant is `[management] tenant_id` (what `GET /subscriptions` reports); MSAL
lower-cases the authority, so it is matched case-insensitively, and any other tenant is
OAuth's `invalid_tenant`. Every URL written is the one the client used (scheme and Host),
so the server answers under each name it is reached by. These stand outside registry
network rules (`public_paths`, which `api/network.py` exempts), as Entra ID and ARM do."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.errors import oauth_error_response
from dockyard.api.oauth2 import identity_token_post, own_url
from dockyard.auth.keys import ALGORITHM
from dockyard.auth.management import MANAGEMENT_AUDIENCE
from dockyard.auth.tokens import ISSUER
from dockyard.common.errors import RequestInvalid
from dockyard.management.api.arm import json_response, services_of
from dockyard.settings import Settings

CLOUD_NAME = "Dockyard"
METADATA_PATHS = ("/metadata/endpoints", "//metadata/endpoints")
OPENID_CONFIGURATION = "/v2.0/.well-known/openid-configuration"
TOKEN = "/oauth2/v2.0/token"


class TenantUnknown(RequestInvalid):
    oauth_error = "invalid_tenant"


def public_paths(settings: Settings) -> frozenset[str]:
    """This module's paths (the tenant's as MSAL writes them: lower case), which no
    registry's network rules guard."""
    tenant = settings.management.tenant_id.lower()
    return frozenset({*METADATA_PATHS, f"/{tenant}{OPENID_CONFIGURATION}", f"/{tenant}{TOKEN}"})


def _tenant(request: Request) -> str | None:
    """The server's tenant if the path names it (None: another tenant)."""
    tenant = services_of(request).settings.management.tenant_id
    return tenant if request.path_params["tenant"].lower() == tenant.lower() else None


def _unknown_tenant(request: Request) -> Response:
    return oauth_error_response(
        TenantUnknown(
            f"Tenant '{request.path_params['tenant']}' not found: this server's tenant is "
            f"{services_of(request).settings.management.tenant_id}"
        )
    )


async def cloud_metadata(request: Request) -> Response:
    """ARM's `metadata/endpoints` document (any `api-version`): the keys az reads."""
    settings = services_of(request).settings
    base = own_url(request) + "/"
    return json_response(
        {
            "name": CLOUD_NAME,
            "resourceManager": base,
            "authentication": {
                "loginEndpoint": base,
                "audiences": [base, MANAGEMENT_AUDIENCE + "/"],
                "tenant": settings.management.tenant_id,
                "identityProvider": "AAD",
            },
            "suffixes": {"acrLoginServer": settings.registry_domain},
        }
    )


async def openid_configuration(request: Request) -> Response:
    tenant = _tenant(request)
    if tenant is None:
        return _unknown_tenant(request)
    base = f"{own_url(request)}/{tenant}"
    return json_response(
        {
            "issuer": ISSUER,
            "token_endpoint": base + TOKEN,
            # MSAL requires the key; Dockyard has no interactive sign-in (404 there).
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "jwks_uri": own_url(request) + "/oauth2/jwks",
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "grant_types_supported": ["client_credentials", "refresh_token"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
        }
    )


async def tenant_token(request: Request) -> Response:
    """The identity token endpoint, for the server's tenant only."""
    if _tenant(request) is None:
        return _unknown_tenant(request)
    return await identity_token_post(request)


routes = [
    *(Route(path, cloud_metadata, methods=["GET"]) for path in METADATA_PATHS),
    Route("/{tenant}" + OPENID_CONFIGURATION, openid_configuration, methods=["GET"]),
    Route("/{tenant}" + TOKEN, tenant_token, methods=["POST"]),
]
