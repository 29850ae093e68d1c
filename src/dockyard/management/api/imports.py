"""`registries/{name}/importImage`: ARM's long-running POST. The request is checked at
once (400 for a bad body, 403/404 for the registries), then answered 202 with a
`Location` (`registries/{name}/operationResults/{id}`) and `Retry-After`, and the import
(`mirroring.imports.Importer`, one run per target) goes on in the background
(`management.operations`). A GET of the Location answers 202 while it runs (with its progress
in bytes), 200 once it has succeeded (with what it did: a Dockyard extension, ARM's 200
is empty, which clients ignore), and ARM's error (the status and code a synchronous
failure would have had) once it has failed: `azure-mgmt-core`'s poller raises that as
`HttpResponseError`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dockyard.api.network import caller_ip
from dockyard.auth.management import READ, WRITE
from dockyard.common.names import check_repository_name
from dockyard.core.registries import RegistryRecord
from dockyard.management.api.arm import (
    Body,
    InvalidRequestContent,
    endpoint,
    json_body,
    json_response,
    registry_for,
    require,
    section,
    services_of,
)
from dockyard.management.api.errors import arm_body_response, operation_failure
from dockyard.management.api.registries import REGISTRY
from dockyard.management.operations import FAILED, IN_PROGRESS, Failure, OperationProgress
from dockyard.management.registry_resources import Placement, RegistryResource, ResourceNotFound
from dockyard.mirroring.imports import (
    ImageReference,
    Importer,
    Reader,
    image_at,
    parse_image,
    parse_registry_uri,
)
from dockyard.mirroring.upstream import Credentials

RETRY_AFTER_SECONDS = 1
_REGISTRY_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
    r"Microsoft\.ContainerRegistry/registries/([^/]+)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ImportPlan:
    source: ImageReference
    reader: Reader  # the caller, whom the source is read as if it is of this server
    credentials: Credentials | None
    targets: list[tuple[str, str | None]]  # (repository, tag or None: by digest only)
    force: bool


class _Login(Body):
    username: str | None = None
    password: str | None = None


class _Source(Body):
    sourceImage: str | None = None
    resourceId: str | None = None
    registryUri: str | None = None
    credentials: _Login | None = None


class ImportBody(Body):
    """ImportImageParameters."""

    source: _Source | None = None
    targetTags: list[str] | None = None
    untaggedTargetRepositories: list[str] | None = None
    mode: Literal["NoForce", "Force"] = "NoForce"


def _source(
    request: Request, resource: RegistryResource, reader: Reader, source: dict[str, Any]
) -> ImageReference:
    """`source.sourceImage` at `resourceId` (a registry of this server) or at
    `registryUri` (any registry), each read in one spelling; a registry of this server,
    named either way, the caller must be able to pull from (`Importer.check_source`, the
    check the import itself makes)."""
    image = source.get("sourceImage")
    if not image:
        raise InvalidRequestContent("source.sourceImage is required")
    resource_id, registry_uri = source.get("resourceId"), source.get("registryUri")
    if (resource_id is None) == (registry_uri is None):
        raise InvalidRequestContent("give one of source.resourceId and source.registryUri")
    services = services_of(request)
    if registry_uri is not None:
        parsed = parse_registry_uri(registry_uri, image)
    else:
        match = _REGISTRY_ID.fullmatch(resource_id)
        if match is None:
            raise InvalidRequestContent(
                f"source.resourceId is not a registry's id: {resource_id!r}"
            )
        subscription, group, name = match.groups()
        found = services.registry_resources.find(Placement(subscription, group), name)
        if found is None:
            require(request, reader.identity, None, READ)  # only a reader of all may know
            raise ResourceNotFound(f"the source registry {resource_id} was not found")
        parsed = image_at(found.record.login_server.lower(), image)
    services.importer.check_source(resource.record, parsed, reader)
    return parsed


def _targets(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    targets: list[tuple[str, str | None]] = []
    for text in body.get("targetTags") or []:
        target = parse_image(text)
        if target.registry is not None or target.digest is not None:
            raise InvalidRequestContent(f"a target tag is REPOSITORY:TAG, not {text!r}")
        targets.append((target.repository, target.tag))
    for repository in body.get("untaggedTargetRepositories") or []:
        check_repository_name(repository)
        targets.append((repository, None))
    if not targets:
        raise InvalidRequestContent("give targetTags and/or untaggedTargetRepositories")
    return targets


def _plan(
    request: Request, resource: RegistryResource, identity: str | None, body: dict[str, Any]
) -> ImportPlan:
    source = section(body, "source")
    reader = Reader(identity, caller_ip(request))
    login = section(source, "credentials")
    credentials = None
    if login:
        if not login.get("password"):
            raise InvalidRequestContent("source.credentials.password is required")
        credentials = Credentials(login.get("username") or "", login["password"])
    return ImportPlan(
        _source(request, resource, reader, source),
        reader,
        credentials,
        _targets(body),
        body.get("mode") == "Force",
    )


async def _run(
    importer: Importer, registry: RegistryRecord, plan: ImportPlan, progress: OperationProgress
) -> dict[str, Any]:
    """Every target in turn; what they did together, as the succeeded operation shows."""
    results = [
        await importer.run(
            registry,
            plan.source,
            repository,
            tag,
            reader=plan.reader,
            credentials=plan.credentials,
            force=plan.force,
            progress=progress,
        )
        for repository, tag in plan.targets
    ]
    return {
        "digest": results[0].digest,
        "targets": [
            f"{repository}:{tag}" if tag else f"{repository}@{results[0].digest}"
            for repository, tag in plan.targets
        ],
        "manifests": results[0].manifests,
        "blobsCopied": sum(r.blobs_copied for r in results),
        "bytesCopied": sum(r.bytes_copied for r in results),
        "blobsLinked": sum(r.blobs_linked for r in results),
    }


def _failure(exc: Exception) -> Failure:
    return operation_failure(exc, "importImage")


def _location(request: Request, operation_id: str) -> dict[str, str]:
    path = request.url.path.rsplit("/", 1)[0] + f"/operationResults/{operation_id}"
    version = request.query_params["api-version"]
    url = request.url.replace(path=path, query=f"api-version={version}")
    return {"Location": str(url), "Retry-After": str(RETRY_AFTER_SECONDS)}


@endpoint
async def import_image(request: Request) -> Response:
    resource, identity = await registry_for(request, WRITE)
    plan = _plan(request, resource, identity, await json_body(request, ImportBody))
    services = services_of(request)
    progress = OperationProgress()
    work = _run(services.importer, resource.record, plan, progress)
    operation_id = services.operations.start(
        resource.record, "importImage", work, _failure, progress
    )
    return Response(status_code=202, headers=_location(request, operation_id))


@endpoint
async def operation_result(request: Request) -> Response:
    resource, _ = await registry_for(request, READ)
    state = services_of(request).operations.state(resource.record, request.path_params["operation"])
    if state is None:
        raise ResourceNotFound(f"no operation {request.path_params['operation']}")
    if state.status == IN_PROGRESS:
        details = state.details or {}
        running: dict[str, Any] = {"status": IN_PROGRESS, "properties": details}
        if details.get("bytesTotal"):
            running["percentComplete"] = round(
                100 * details["bytesCopied"] / details["bytesTotal"], 1
            )
        return json_response(
            running,
            status_code=202,
            headers={"Location": str(request.url), "Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if state.status == FAILED:
        assert state.failure is not None
        failure = state.failure
        return arm_body_response(failure.status, failure.code, failure.message)
    return json_response({"status": state.status, "properties": state.details or {}})


routes = [
    Route(REGISTRY + "/importImage", import_image, methods=["POST"]),
    Route(REGISTRY + "/operationResults/{operation}", operation_result, methods=["GET"]),
]
