"""SBOMs on push, through the registry API in process: an image of real package
databases pushed with a whiteout that deletes a package, the push event handled, and
its SPDX 2.3 and CycloneDX referrers found through `/v2/<name>/referrers/<digest>` and
`/acr/v1`, listing what `image_packages` lists; every platform of an index gets its
own; a redelivered event stores nothing more; a registry left out gets none."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import image_contents as contents
import images
import pytest
from endpoint import AppEndpoint

from dockyard.common.errors import ManifestInvalid
from dockyard.core.events import Envelope, ManifestPushed, TagMoved
from dockyard.sbom.documents import CYCLONEDX_JSON, SPDX_JSON
from dockyard.sbom.feature import SBOM
from dockyard.sbom.generation import SbomGeneration
from dockyard.sbom.inventory import image_packages
from dockyard.services import Services

REPO = "app/sbom"


def make_endpoint(make_services, registries: tuple[str, ...] = ("*",)) -> AppEndpoint:
    services: Services = make_services(
        auth={"enabled": False},
        registry={"default_name": "dockyard", "login_server": "localhost:5000"},
        sbom={"registries": list(registries)},
    )
    return AppEndpoint(services)


@pytest.fixture
def endpoint(make_services) -> Iterator[AppEndpoint]:
    app = make_endpoint(make_services)
    yield app
    app.close()


def generate(services: Services) -> int:
    """Handle every push event due (the background job's rounds, run here)."""
    generation = SbomGeneration(services)
    claimed = total = asyncio.run(generation.run_once(limit=100))
    while claimed:
        claimed = asyncio.run(generation.run_once(limit=100))
        total += claimed
    return total


def debian_image() -> images.Image:
    """Debian's dpkg status and old Python packages, then a layer that deletes one of
    them (`requests`) and one that adds an npm package."""
    base = contents.gzip_layer(
        {
            "etc/os-release": Path("/etc/os-release").read_bytes(),
            "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes(),
            **dict(contents.dist_info(name, v) for name, v in contents.OLD_PYTHON.items()),
        }
    )
    removal = contents.gzip_layer({f"{contents.SITE_PACKAGES}/.wh.requests-2.19.1.dist-info": b""})
    app = contents.zstd_layer(
        {"srv/node_modules/lodash/package.json": b'{"name":"lodash","version":"4.17.15"}'}
    )
    return contents.oci_image([base, removal, app])


def referrers(endpoint: AppEndpoint, digest: str, repo: str = REPO) -> list[dict]:
    with endpoint.client() as http:
        listed = http.get(f"/v2/{repo}/referrers/{digest}")
        assert listed.status_code == 200, listed.text
        return listed.json()["manifests"]


def document(endpoint: AppEndpoint, referrer: dict, repo: str = REPO) -> dict:
    """The SBOM a referrer holds: its manifest's one layer."""
    with endpoint.client() as http:
        manifest = http.get(
            f"/v2/{repo}/manifests/{referrer['digest']}",
            headers={"Accept": images.OCI_MANIFEST},
        ).json()
        [layer] = manifest["layers"]
        return http.get(f"/v2/{repo}/blobs/{layer['digest']}").json()


def test_a_pushed_image_gets_spdx_and_cyclonedx_referrers(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    image = debian_image()
    digest = endpoint.push_image(REPO, image, "v1")
    assert referrers(endpoint, digest) == []
    assert generate(services) >= 1

    found = referrers(endpoint, digest)
    assert sorted(r["artifactType"] for r in found) == [SPDX_JSON, CYCLONEDX_JSON]
    for referrer in found:
        assert referrer["annotations"]["created-by"] == "dockyard"
        assert referrer["mediaType"] == images.OCI_MANIFEST
    registry = services.registries.for_host("localhost:5000")
    expected = {p.purl for p in image_packages(services, registry, REPO, digest)}
    assert "pkg:pypi/urllib3@1.24.1" in expected and "pkg:npm/lodash@4.17.15" in expected
    assert not any("requests" in purl for purl in expected)  # the whiteout deleted it
    assert any(purl.startswith("pkg:deb/debian/libc6@") for purl in expected)

    by_type = {r["artifactType"]: r for r in found}
    spdx = document(endpoint, by_type[SPDX_JSON])
    assert (spdx["spdxVersion"], spdx["dataLicense"], spdx["SPDXID"]) == (
        "SPDX-2.3",
        "CC0-1.0",
        "SPDXRef-DOCUMENT",
    )
    assert spdx["name"] == f"localhost:5000/{REPO}@{digest}"
    assert spdx["packages"][0]["primaryPackagePurpose"] == "CONTAINER"
    listed = {
        ref["referenceLocator"]
        for package in spdx["packages"][1:]
        for ref in package["externalRefs"]
        if ref["referenceType"] == "purl"
    }
    assert listed == expected
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES"}.items() <= (
        spdx["relationships"][0].items()
    )

    cyclonedx = document(endpoint, by_type[CYCLONEDX_JSON])
    assert (cyclonedx["bomFormat"], cyclonedx["specVersion"]) == ("CycloneDX", "1.6")
    assert cyclonedx["metadata"]["component"]["version"] == digest
    assert {c["purl"] for c in cyclonedx["components"]} == expected
    [image_deps] = [d for d in cyclonedx["dependencies"] if d.get("dependsOn")]
    assert image_deps["ref"] == cyclonedx["metadata"]["component"]["bom-ref"]
    assert len(image_deps["dependsOn"]) == len(cyclonedx["components"])

    with endpoint.client() as http:  # /acr/v1 shows them as manifests of the repository
        for referrer in found:
            shown = http.get(f"/acr/v1/{REPO}/_manifests/{referrer['digest']}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["manifest"]["mediaType"] == images.OCI_MANIFEST


def test_a_redelivered_event_stores_no_second_sbom(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    image = contents.oci_image(
        [contents.gzip_layer(dict([contents.dist_info("requests", "2.19.1")]))]
    )
    digest = endpoint.push_image(REPO, image, "v2")
    generate(services)
    first = referrers(endpoint, digest)
    assert len(first) == 2
    registry = services.registries.for_host("localhost:5000")
    pushed = ManifestPushed(
        registry_id=registry.id, repository=REPO, digest=digest, size=len(image.manifest)
    )
    again = asyncio.run(SbomGeneration(services).handle(Envelope(1, datetime.now(UTC), pushed)))
    assert again.stored == ()
    endpoint.push_image(REPO, image, "v2-again")  # the same image under another tag
    generate(services)
    assert referrers(endpoint, digest) == first


def test_two_events_of_one_image_handled_at_once_store_one_sbom_of_each_format(
    endpoint: AppEndpoint,
) -> None:
    """As two processes would handle a platform's push and its index's, or a push by
    digest and a tag: the documents are the same bytes, so one manifest each."""
    services = endpoint.services
    image = contents.oci_image([contents.gzip_layer(dict([contents.dist_info("six", "1")]))])
    digest = endpoint.push_image(REPO, image)
    registry = services.registries.for_host("localhost:5000")

    def envelope(seconds: int, tag: str | None) -> Envelope:
        fields = {
            "registry_id": registry.id,
            "repository": REPO,
            "digest": digest,
            "size": len(image.manifest),
        }
        event = ManifestPushed(**fields) if tag is None else TagMoved(tag=tag, **fields)
        return Envelope(seconds, datetime(2026, 1, 1, 0, 0, seconds, tzinfo=UTC), event)

    async def both() -> None:
        first, second = SbomGeneration(services), SbomGeneration(services)
        await asyncio.gather(first.handle(envelope(1, None)), second.handle(envelope(2, "v1")))

    asyncio.run(both())
    assert sorted(r["artifactType"] for r in referrers(endpoint, digest)) == [
        SPDX_JSON,
        CYCLONEDX_JSON,
    ]


def test_every_platform_of_an_index_gets_its_sboms(endpoint: AppEndpoint) -> None:
    services = endpoint.services
    children = [
        contents.oci_image(
            [contents.gzip_layer({"lib/apk/db/installed": contents.APK_INSTALLED})], arch
        )
        for arch in ("amd64", "arm64")
    ]
    for child in children:
        endpoint.push_image(REPO, child)
    # BuildKit's attestation of the first platform, in the index: no SBOM of its own.
    statement = b'{"_type":"https://in-toto.io/Statement/v0.1"}'
    attestation = _attestation(children[0].digest, statement)
    endpoint.push_blob(REPO, statement)
    endpoint.push_image(REPO, attestation)
    index = images.json_bytes(
        {
            "schemaVersion": 2,
            "mediaType": images.OCI_INDEX,
            "manifests": [child.descriptor() for child in children] + [attestation.descriptor()],
        }
    )
    pushed = endpoint.put_manifest(REPO, "multi", index, images.OCI_INDEX)
    assert pushed.status_code == 201, pushed.text
    generate(services)
    for child in children:
        assert len(referrers(endpoint, child.digest)) == 2
    assert referrers(endpoint, images.sha256_digest(index)) == []
    assert referrers(endpoint, attestation.digest) == []
    registry = services.registries.for_host("localhost:5000")
    with pytest.raises(ManifestInvalid):
        image_packages(services, registry, REPO, images.sha256_digest(index))


def test_a_registry_not_named_gets_no_sbom(make_services) -> None:
    endpoint = make_endpoint(make_services, registries=("another",))
    try:
        image = contents.oci_image([contents.gzip_layer(dict([contents.dist_info("six", "1")]))])
        digest = endpoint.push_image(REPO, image, "v1")
        generate(endpoint.services)
        assert referrers(endpoint, digest) == []
    finally:
        endpoint.close()


def test_off_by_default_the_feature_runs_no_job(make_services) -> None:
    services: Services = make_services()
    try:
        assert SBOM.jobs(services) == []
    finally:
        services.close()
    endpoint = make_endpoint(make_services, registries=("dockyard",))
    try:
        [job] = SBOM.jobs(endpoint.services)
        job.close()  # type: ignore[attr-defined]  (a coroutine never started)
    finally:
        endpoint.close()


def _attestation(subject: str, statement: bytes) -> images.Image:
    """A BuildKit attestation manifest (`docker buildx build --sbom`) of `subject`."""
    config = images.image_config("unknown", None, [])
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": images.descriptor(images.OCI_CONFIG, config),
        "layers": [
            images.descriptor(
                "application/vnd.in-toto+json",
                statement,
                annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"},
            )
        ],
        "annotations": {
            "vnd.docker.reference.digest": subject,
            "vnd.docker.reference.type": "attestation-manifest",
        },
    }
    platform = {"architecture": "unknown", "os": "unknown"}
    return images.Image(images.json_bytes(manifest), images.OCI_MANIFEST, config, (), platform)


def test_refusals_and_unreadable_layers_store_nothing_and_are_not_retried(
    endpoint: AppEndpoint,
) -> None:
    services = endpoint.services
    manifest, _ = endpoint.push_small_image(REPO, "random")  # a layer of random bytes
    image = contents.oci_image([contents.gzip_layer(dict([contents.dist_info("six", "1")]))])
    locked = endpoint.push_image("app/locked", image, "v1")
    with endpoint.client() as http:
        patched = http.patch("/acr/v1/app/locked", json={"writeEnabled": False})
        assert patched.status_code == 200, patched.text
    generate(services)
    assert referrers(endpoint, images.sha256_digest(manifest)) == []
    assert referrers(endpoint, locked, "app/locked") == []
    assert services.outbox.deliveries("sbom", pending_only=True) == []
