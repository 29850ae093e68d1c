"""A bounded, seeded fuzz of the JSON bodies and query values of `/acr/v1` and the
management API, in process: a few thousand requests, each a good one mutated (wrong
types, nulls, huge numbers, deep nesting, odd unicode, missing and extra keys, broken
JSON, bad query values), none of which may get a 5xx; good requests still work after.

Sources are this server's own (no registryUri, no cache rule pulls): nothing leaves the
process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from typing import Any

import httpx
import pytest

from dockyard.app import create_app

SEED = 12
ROUNDS = 2500
SUBSCRIPTION = "/subscriptions/00000000-0000-0000-0000-000000000000"
GROUP = f"{SUBSCRIPTION}/resourceGroups/dockyard/providers/Microsoft.ContainerRegistry"
REGISTRY = f"{GROUP}/registries/dockyard"
VERSION = "2025-11-01"
MAX_DEPTH = 8
ASSIGNMENT = "3f2c1b4a-0000-4000-8000-000000000001"

# Values that have broken parsers elsewhere: every JSON type, edges of numbers, strings
# that are long, empty, control or astral characters, and containers of them.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    2**63,
    -(2**63) - 1,
    10**30,
    1e308,
    -1e308,
    "",
    " ",
    "x" * 5000,
    "\u0000",
    "\u202e\ufeff",
    "💥",
    "../../etc/passwd",
    "%00",
    "Enabled",
    "enabled",
    "a/b/c",
    "2h",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "10.0.0.0/99",
    "http://[::1",
    "http://127.0.0.1:99999/",
    "::/0",
    "Deny",
    "Premium",
    "password1",
    f"{REGISTRY}/tokens/tokenone",
    "repositories/*/content/write",
    [],
    [""],
    [None],
    [1, "a"],
    {},
    {"k": 1},
    {"": ""},
]
ODD_QUERY_VALUES = [
    "",
    "-1",
    "0",
    "1e9",
    "99999999999999999999999",
    "abc",
    "💥",
    "x" * 3000,
    "99999999d",
    "²",
    "١٢",
    "0001-01-01T00:00:00+14:00",
    "'; DROP TABLE registries; --",
    "%",
]
EXTRA_KEYS = ["extra", "properties", "tags", "name", "status", "", "💥", "__proto__"]


def _deep(depth: int) -> Any:
    value: Any = 1
    for n in range(depth):
        value = [value] if n % 2 else {"a": value}
    return value


def _nodes(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into `value` (keys and indexes), the root's included, down to a depth
    that the bodies' own fields do not pass (what is deeper was nested by a mutation)."""
    found = [path]
    if len(path) > MAX_DEPTH:
        return found
    if isinstance(value, dict):
        for key, child in value.items():
            found += _nodes(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _nodes(child, (*path, index))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = value
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = new
    return value


def _mutate(rng: random.Random, body: Any) -> Any:
    """One change to a copy of `body`."""
    body = json.loads(json.dumps(body))
    path = rng.choice(_nodes(body))
    target = body
    for part in path:
        target = target[part]
    kind = rng.randrange(6)
    if kind == 0:
        return _replace(body, path, rng.choice(ODD_VALUES))
    if kind == 1 and path:  # drop the key or item
        parent = body
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
        return body
    if kind == 2 and isinstance(target, dict):
        target[rng.choice(EXTRA_KEYS)] = rng.choice(ODD_VALUES)
        return body
    if kind == 3:
        return _replace(body, path, rng.choice([[target], {"value": target}]))
    if kind == 4:
        return _replace(body, path, _deep(rng.choice([10, 150, 300])))
    return _replace(body, path, rng.choice(ODD_VALUES))


def _raw(rng: random.Random, body: Any) -> bytes:
    """The body as sent: mostly JSON, sometimes broken on the way."""
    text = json.dumps(body).encode()
    kind = rng.randrange(12)
    if kind == 0:
        return text[: rng.randrange(len(text) + 1)]
    if kind == 1:
        return b"\xff\xfe" + text
    if kind == 2:
        return b"\xef\xbb\xbf" + text
    if kind == 3:
        return text.replace(b'"', b"'", 1)
    if kind == 4:
        return b'{"a": "\\ud800"}'
    if kind == 5:
        return b"[" * 5000 + b"]" * 5000
    return text


def _templates(digest: str, principal: str) -> list[tuple[str, str, dict[str, str], Any]]:
    """(method, path, query, body): good requests, each mutated many times."""
    webhook = f"{REGISTRY}/webhooks/hookone"
    return [
        (
            "PATCH",
            REGISTRY,
            {},
            {
                "tags": {"team": "a"},
                "sku": {"name": "Premium"},
                "properties": {
                    "adminUserEnabled": True,
                    "anonymousPullEnabled": False,
                    "publicNetworkAccess": "Enabled",
                    "networkRuleSet": {
                        "defaultAction": "Allow",
                        "ipRules": [{"action": "Allow", "value": "10.0.0.0/8"}],
                    },
                    "policies": {
                        "retentionPolicy": {"status": "disabled", "days": 7},
                        "softDeletePolicy": {"status": "disabled", "retentionDays": 7},
                        "trustPolicy": {"type": "Notary", "status": "disabled"},
                    },
                    "storageQuotaBytes": None,
                },
            },
        ),
        (
            "PUT",
            f"{GROUP}/registries/fuzzregistry",
            {},
            {"location": "westeurope", "sku": {"name": "Basic"}, "tags": {"a": "b"}},
        ),
        (
            "POST",
            f"{SUBSCRIPTION}/providers/Microsoft.ContainerRegistry/checkNameAvailability",
            {},
            {"name": "abcdef", "type": "Microsoft.ContainerRegistry/registries"},
        ),
        ("POST", f"{REGISTRY}/regenerateCredential", {}, {"name": "password2"}),
        (
            "PUT",
            webhook,
            {},
            {
                "location": "westeurope",
                "tags": {"a": "b"},
                "properties": {
                    "serviceUri": "http://127.0.0.1:9/hook",
                    "customHeaders": {"X-Key": "v"},
                    "actions": ["push", "delete"],
                    "scope": "app:*",
                    "status": "enabled",
                },
            },
        ),
        ("PATCH", webhook, {}, {"properties": {"status": "disabled", "scope": "app"}}),
        (
            "PUT",
            f"{REGISTRY}/scopeMaps/mapone",
            {},
            {"properties": {"actions": ["repositories/app/content/read"], "description": "d"}},
        ),
        (
            "PUT",
            f"{REGISTRY}/tokens/tokenone",
            {},
            {
                "properties": {
                    "scopeMapId": f"{REGISTRY}/scopeMaps/mapone",
                    "status": "enabled",
                    "credentials": {"certificates": []},
                }
            },
        ),
        (
            "POST",
            f"{REGISTRY}/generateCredentials",
            {},
            {
                "tokenId": f"{REGISTRY}/tokens/tokenone",
                "name": "password1",
                "expiry": "2030-01-01T00:00:00Z",
            },
        ),
        (
            "PUT",
            f"{REGISTRY}/credentialSets/setone",
            {},
            {
                "properties": {
                    "loginServer": "docker.io",
                    "authCredentials": [
                        {
                            "name": "Credential1",
                            "usernameSecretIdentifier": "user",
                            "passwordSecretIdentifier": "secret",
                        }
                    ],
                }
            },
        ),
        (
            "PUT",
            f"{REGISTRY}/cacheRules/ruleone",
            {},
            {
                "properties": {
                    "sourceRepository": "docker.io/library/alpine",
                    "targetRepository": "mirror/alpine",
                    "credentialSetResourceId": f"{REGISTRY}/credentialSets/setone",
                }
            },
        ),
        (
            "PUT",
            f"{REGISTRY}/providers/Microsoft.Authorization/roleAssignments/{ASSIGNMENT}",
            {},
            {
                "properties": {
                    "principalId": principal,
                    "roleDefinitionId": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
                    "condition": "@Request[Microsoft.ContainerRegistry/registries/"
                    "repositories:name] StringEqualsIgnoreCase 'app'",
                }
            },
        ),
        (
            "POST",
            f"{REGISTRY}/importImage",
            {},
            {
                "source": {"resourceId": REGISTRY, "sourceImage": "app:v1"},
                "targetTags": ["copy:v1"],
                "untaggedTargetRepositories": ["copy2"],
                "mode": "Force",
            },
        ),
        ("PATCH", f"{REGISTRY}/scopeMaps/mapone", {}, {"properties": {"description": "e"}}),
        ("PATCH", f"{REGISTRY}/tokens/tokenone", {}, {"properties": {"status": "disabled"}}),
        (
            "PATCH",
            f"{REGISTRY}/credentialSets/setone",
            {},
            {"properties": {"authCredentials": [{"passwordSecretIdentifier": "other"}]}},
        ),
        ("PATCH", f"{REGISTRY}/cacheRules/ruleone", {}, {"properties": {}}),
        ("GET", f"{REGISTRY}/logs", {"since": "1h", "top": "10", "kind": "login"}, None),
        (
            "GET",
            f"{SUBSCRIPTION}/resources",
            {"$filter": "resourceType eq 'Microsoft.ContainerRegistry/registries'"},
            None,
        ),
        ("GET", "/subscriptions", {}, None),
        ("GET", f"{SUBSCRIPTION}/resourcegroups", {}, None),
        ("GET", f"{SUBSCRIPTION}/providers/Microsoft.Authorization/roleAssignments", {}, None),
        ("GET", "/providers/Microsoft.ContainerRegistry/operations", {}, None),
        ("GET", f"{REGISTRY}/listUsages", {}, None),
        ("POST", f"{REGISTRY}/listCredentials", {}, None),
        ("POST", f"{webhook}/getCallbackConfig", {}, None),
        ("GET", f"{REGISTRY}/operationResults/nothing", {}, None),
        ("DELETE", f"{REGISTRY}/cacheRules/ruleone", {}, None),
        ("DELETE", f"{REGISTRY}/tokens/tokenone", {}, None),
        ("GET", f"{REGISTRY}/webhooks", {"$top": "2", "$skipToken": "a"}, None),
        ("GET", f"{REGISTRY}/tokens", {"$top": "2"}, None),
        ("POST", f"{webhook}/listEvents", {"$top": "2", "$skipToken": "5"}, None),
        ("GET", f"{GROUP}/registries", {"$top": "1"}, None),
        ("PATCH", "/acr/v1/app", {}, {"writeEnabled": True, "listEnabled": True}),
        ("PATCH", "/acr/v1/app/_tags/v1", {}, {"deleteEnabled": True, "readEnabled": True}),
        ("PATCH", f"/acr/v1/app/_manifests/{digest}", {}, {"writeEnabled": True}),
        ("POST", f"/acr/v1/_deleted/app/_manifests/{digest}", {"force": "true"}, {"tag": "v1"}),
        ("GET", "/acr/v1/app/_tags", {"n": "2", "last": "a", "orderby": "timedesc"}, None),
        ("GET", "/acr/v1/app/_manifests", {"n": "2", "orderby": "timeasc"}, None),
        ("GET", "/acr/v1/_catalog", {"n": "5", "last": "a"}, None),
        ("GET", "/acr/v1/_deleted/_catalog", {"n": "5"}, None),
    ]


async def _push(http: httpx.AsyncClient) -> str:
    """`app:v1`, an OCI image of one config and one layer; its digest."""
    blobs = [b'{"architecture":"amd64","os":"linux"}', b"layer bytes"]
    descriptors = []
    for blob in blobs:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        answer = await http.post("/v2/app/blobs/uploads/", params={"digest": digest}, content=blob)
        assert answer.status_code == 201, answer.text
        descriptors.append({"digest": digest, "size": len(blob)})
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **descriptors[0]},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **descriptors[1]}],
        }
    ).encode()
    answer = await http.put(
        "/v2/app/manifests/v1",
        content=manifest,
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert answer.status_code == 201, answer.text
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.mark.slow
def test_mutated_bodies_and_queries_never_get_a_5xx(make_services) -> None:
    services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
    )
    principal, _ = services.administration.create_identity("fuzzer")
    app = create_app(services, background=False)
    rng = random.Random(SEED)

    async def session() -> list[str]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost:5000") as http:
            digest = await _push(http)
            templates = _templates(digest, principal.id)
            for method, path, query, body in templates:  # each good one works
                answer = await http.request(
                    method, path, params={"api-version": VERSION, **query}, json=body
                )
                # (nothing is in the recycle bin: a restore reads its body, then finds none;
                # nor is there an operation of that name)
                expected = 404 if "/_deleted/app" in path or "/operationResults/" in path else 300
                assert answer.status_code <= expected, (method, path, answer.text)
            failures = []
            for _ in range(ROUNDS):
                method, path, query, body = rng.choice(templates)
                params = {"api-version": VERSION, **query}
                if body is None or rng.random() < 0.2:
                    name = rng.choice([*params, "api-version", "$top", "n", "extra"])
                    params[name] = rng.choice(ODD_QUERY_VALUES)
                content = b""
                if body is not None:
                    for _ in range(rng.randint(1, 3)):
                        body = _mutate(rng, body)
                    content = _raw(rng, body)
                answer = await http.request(method, path, params=params, content=content)
                if answer.status_code >= 500:
                    failures.append(f"{method} {path} {params} {content[:300]!r}: {answer.text}")
            await asyncio.sleep(0.1)  # the imports accepted run, to their end
            for method, path, query, body in templates[:2]:  # still served
                answer = await http.request(
                    method, path, params={"api-version": VERSION, **query}, json=body
                )
                assert answer.status_code < 300, (method, path, answer.text)
            registry = await http.get(REGISTRY, params={"api-version": VERSION})
            assert registry.json()["properties"]["loginServer"] == "localhost:5000"
            unlocked = {"readEnabled": True, "deleteEnabled": True, "writeEnabled": True}
            for path in ("/acr/v1/app", "/acr/v1/app/_tags/v1", f"/acr/v1/app/_manifests/{digest}"):
                answer = await http.patch(path, json=unlocked)
                assert answer.status_code == 200, answer.text
            pulled = await http.get(
                "/v2/app/manifests/v1",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert pulled.status_code == 200
            return failures

    failures = asyncio.run(session())
    assert not failures, f"{len(failures)} 5xx answers:\n" + "\n".join(failures[:20])
