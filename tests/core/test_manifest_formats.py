"""`dockyard.core.manifest_formats`: every manifest media type, and every way to be invalid."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from dockyard.common.errors import ManifestInvalid, ManifestTooLarge
from dockyard.core.manifest_formats import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    MAX_MANIFEST_SIZE,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    parse_manifest,
)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_NONDISTRIBUTABLE = [
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
SBOM = "application/spdx+json"

CONFIG = "sha256:" + "c" * 64
LAYER1 = "sha256:" + "1" * 64
LAYER2 = "sha256:" + "2" * 64
CHILD1 = "sha256:" + "a" * 64
CHILD2 = "sha512:" + "b" * 128
SUBJECT = "sha256:" + "5" * 64


def descriptor(media_type: str, digest: str, size: int, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **extra}


def oci_manifest(**fields: Any) -> dict[str, Any]:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, CONFIG, 100),
        "layers": [descriptor(OCI_LAYER, LAYER1, 1000), descriptor(OCI_LAYER, LAYER2, 2000)],
    }
    doc.update(fields)
    return doc


def oci_index(**fields: Any) -> dict[str, Any]:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(
                OCI_MANIFEST, CHILD1, 500, platform={"os": "linux", "architecture": "amd64"}
            ),
            descriptor(
                OCI_MANIFEST, CHILD2, 600, platform={"os": "linux", "architecture": "arm64"}
            ),
        ],
    }
    doc.update(fields)
    return doc


def docker_manifest(**fields: Any) -> dict[str, Any]:
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, CONFIG, 1469),
        "layers": [descriptor(DOCKER_LAYER, LAYER1, 977)],
    }
    doc.update(fields)
    return doc


def docker_list(**fields: Any) -> dict[str, Any]:
    doc = {
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST,
        "manifests": [descriptor(DOCKER_MANIFEST, CHILD1, 528, platform={"os": "linux"})],
    }
    doc.update(fields)
    return doc


def artifact(**fields: Any) -> dict[str, Any]:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": SBOM,
        "config": descriptor(EMPTY_CONFIG, EMPTY_DIGEST, 2, data="e30="),
        "layers": [descriptor(SBOM, LAYER1, 4242)],
    }
    doc.update(fields)
    return doc


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


def without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    del doc[key]
    return doc


# -- images --------------------------------------------------------------------------------


def test_oci_image_manifest() -> None:
    body = dumps(oci_manifest())
    manifest = parse_manifest(body, OCI_MANIFEST)
    assert manifest.media_type == OCI_MANIFEST
    assert manifest.body is body
    assert manifest.blobs == (
        Descriptor(OCI_CONFIG, CONFIG, 100),
        Descriptor(OCI_LAYER, LAYER1, 1000),
        Descriptor(OCI_LAYER, LAYER2, 2000),
    )
    assert manifest.children == ()
    assert manifest.subject is None
    assert manifest.annotations is None
    # The referrers API reports an image's config media type as its artifact type.
    assert manifest.artifact_type == OCI_CONFIG
    assert manifest.config_media_type == OCI_CONFIG


def test_body_is_kept_byte_exact() -> None:
    body = (
        b'{ "layers" : [],\n  "schemaVersion": 2,\n  "config": '
        + dumps(descriptor(OCI_CONFIG, CONFIG, 1))
        + b"\n}\n"
    )
    manifest = parse_manifest(body, OCI_MANIFEST)
    assert manifest.body == body
    assert manifest.blobs == (Descriptor(OCI_CONFIG, CONFIG, 1),)


def test_docker_schema2_manifest() -> None:
    manifest = parse_manifest(dumps(docker_manifest()), DOCKER_MANIFEST)
    assert manifest.media_type == DOCKER_MANIFEST
    assert manifest.blobs == (
        Descriptor(DOCKER_CONFIG, CONFIG, 1469),
        Descriptor(DOCKER_LAYER, LAYER1, 977),
    )
    assert manifest.children == ()
    assert manifest.config_media_type == DOCKER_CONFIG
    assert manifest.artifact_type == DOCKER_CONFIG


def test_docker_foreign_layers_are_not_required() -> None:
    doc = docker_manifest(
        layers=[
            descriptor(DOCKER_FOREIGN, LAYER2, 5000, urls=["https://mcr.example/layer"]),
            descriptor(DOCKER_LAYER, LAYER1, 977),
        ]
    )
    manifest = parse_manifest(dumps(doc), DOCKER_MANIFEST)
    assert [b.digest for b in manifest.blobs] == [CONFIG, LAYER1]


@pytest.mark.parametrize("media_type", OCI_NONDISTRIBUTABLE)
def test_oci_nondistributable_layers_are_not_required(media_type: str) -> None:
    doc = oci_manifest(
        layers=[descriptor(OCI_LAYER, LAYER1, 1000), descriptor(media_type, LAYER2, 2000)]
    )
    manifest = parse_manifest(dumps(doc), OCI_MANIFEST)
    assert [b.digest for b in manifest.blobs] == [CONFIG, LAYER1]


def test_foreign_layers_are_still_validated() -> None:
    doc = docker_manifest(layers=[descriptor(DOCKER_FOREIGN, "sha256:nothex", 5000)])
    with pytest.raises(ManifestInvalid, match=r"layers\[0\]\.digest"):
        parse_manifest(dumps(doc), DOCKER_MANIFEST)


def test_image_without_layers_is_valid() -> None:
    manifest = parse_manifest(dumps(oci_manifest(layers=[])), OCI_MANIFEST)
    assert manifest.blobs == (Descriptor(OCI_CONFIG, CONFIG, 100),)


def test_layer_listed_twice_is_listed_twice() -> None:
    layer = descriptor(OCI_LAYER, LAYER1, 1000)
    manifest = parse_manifest(dumps(oci_manifest(layers=[layer, layer])), OCI_MANIFEST)
    assert [b.digest for b in manifest.blobs] == [CONFIG, LAYER1, LAYER1]


def test_sha512_descriptors() -> None:
    sha512 = "sha512:" + "9" * 128
    doc = oci_manifest(layers=[descriptor(OCI_LAYER, sha512, 7)])
    manifest = parse_manifest(dumps(doc), OCI_MANIFEST)
    assert manifest.blobs[1] == Descriptor(OCI_LAYER, sha512, 7)


# -- indexes ---------------------------------------------------------------------------------


def test_oci_index() -> None:
    manifest = parse_manifest(dumps(oci_index()), OCI_INDEX)
    assert manifest.media_type == OCI_INDEX
    assert manifest.children == (
        Descriptor(OCI_MANIFEST, CHILD1, 500),
        Descriptor(OCI_MANIFEST, CHILD2, 600),
    )
    assert manifest.blobs == ()
    assert manifest.subject is None
    assert manifest.artifact_type is None
    assert manifest.config_media_type is None


def test_empty_oci_index_is_valid() -> None:
    manifest = parse_manifest(dumps(oci_index(manifests=[])), OCI_INDEX)
    assert manifest.children == ()


def test_oci_index_of_indexes() -> None:
    doc = oci_index(manifests=[descriptor(OCI_INDEX, CHILD1, 300)])
    assert parse_manifest(dumps(doc), OCI_INDEX).children == (Descriptor(OCI_INDEX, CHILD1, 300),)


def test_docker_manifest_list() -> None:
    manifest = parse_manifest(dumps(docker_list()), DOCKER_LIST)
    assert manifest.media_type == DOCKER_LIST
    assert manifest.children == (Descriptor(DOCKER_MANIFEST, CHILD1, 528),)
    assert manifest.blobs == ()
    assert manifest.config_media_type is None


def test_index_with_artifact_type_subject_and_annotations() -> None:
    doc = oci_index(
        artifactType="application/vnd.example.bundle",
        subject=descriptor(OCI_MANIFEST, SUBJECT, 321),
        annotations={"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    )
    manifest = parse_manifest(dumps(doc), OCI_INDEX)
    assert manifest.artifact_type == "application/vnd.example.bundle"
    assert manifest.subject == Descriptor(OCI_MANIFEST, SUBJECT, 321)
    assert manifest.annotations == {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}


# -- artifacts and referrers -------------------------------------------------------------------


def test_artifact_with_empty_config() -> None:
    manifest = parse_manifest(dumps(artifact()), OCI_MANIFEST)
    assert manifest.artifact_type == SBOM
    assert manifest.config_media_type == EMPTY_CONFIG
    # The empty config is a blob like any other: `{}`, two bytes, pushed by the client.
    assert manifest.blobs == (
        Descriptor(EMPTY_CONFIG, EMPTY_DIGEST, 2),
        Descriptor(SBOM, LAYER1, 4242),
    )


def test_artifact_without_layers() -> None:
    manifest = parse_manifest(dumps(artifact(layers=[])), OCI_MANIFEST)
    assert manifest.artifact_type == SBOM
    assert manifest.blobs == (Descriptor(EMPTY_CONFIG, EMPTY_DIGEST, 2),)


def test_artifact_type_falls_back_to_the_config_media_type() -> None:
    doc = oci_manifest(config=descriptor("application/vnd.cncf.helm.config.v1+json", CONFIG, 9))
    manifest = parse_manifest(dumps(doc), OCI_MANIFEST)
    assert manifest.artifact_type == "application/vnd.cncf.helm.config.v1+json"


def test_artifact_type_wins_over_the_config_media_type() -> None:
    doc = oci_manifest(artifactType="application/vnd.example.thing")
    assert parse_manifest(dumps(doc), OCI_MANIFEST).artifact_type == (
        "application/vnd.example.thing"
    )


def test_referrer_with_subject_and_annotations() -> None:
    doc = artifact(
        subject=descriptor(OCI_MANIFEST, SUBJECT, 1234, artifactType=OCI_CONFIG),
        annotations={"org.example.signed-by": "alice", "empty": ""},
    )
    manifest = parse_manifest(dumps(doc), OCI_MANIFEST)
    assert manifest.subject == Descriptor(OCI_MANIFEST, SUBJECT, 1234)
    assert manifest.annotations == {"org.example.signed-by": "alice", "empty": ""}
    # The subject is not a blob the manifest needs: it may be pushed after its referrers.
    assert SUBJECT not in {b.digest for b in manifest.blobs}


def test_docker_manifest_with_subject() -> None:
    doc = docker_manifest(subject=descriptor(DOCKER_MANIFEST, SUBJECT, 99))
    assert parse_manifest(dumps(doc), DOCKER_MANIFEST).subject == Descriptor(
        DOCKER_MANIFEST, SUBJECT, 99
    )


# -- Content-Type and the body's mediaType -------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "media_type"),
    [
        (oci_manifest(), OCI_MANIFEST),
        (oci_index(), OCI_INDEX),
        (docker_manifest(), DOCKER_MANIFEST),
        (docker_list(), DOCKER_LIST),
    ],
    ids=["oci-manifest", "oci-index", "docker-manifest", "docker-list"],
)
def test_media_type_comes_from_the_body_without_content_type(
    doc: dict[str, Any], media_type: str
) -> None:
    assert parse_manifest(dumps(doc), None).media_type == media_type
    assert parse_manifest(dumps(doc), "").media_type == media_type


@pytest.mark.parametrize(
    ("doc", "media_type"),
    [
        (without(oci_manifest(), "mediaType"), OCI_MANIFEST),
        (without(oci_index(), "mediaType"), OCI_INDEX),
        (without(docker_manifest(), "mediaType"), DOCKER_MANIFEST),
        (without(docker_list(), "mediaType"), DOCKER_LIST),
    ],
    ids=["oci-manifest", "oci-index", "docker-manifest", "docker-list"],
)
def test_media_type_comes_from_content_type_when_the_body_has_none(
    doc: dict[str, Any], media_type: str
) -> None:
    manifest = parse_manifest(dumps(doc), media_type)
    assert manifest.media_type == media_type
    assert len(manifest.blobs) + len(manifest.children) > 0


def test_content_type_parameters_are_ignored() -> None:
    manifest = parse_manifest(dumps(oci_manifest()), f"{OCI_MANIFEST}; charset=utf-8")
    assert manifest.media_type == OCI_MANIFEST
    manifest = parse_manifest(dumps(oci_index()), f"  {OCI_INDEX} ;q=1")
    assert manifest.media_type == OCI_INDEX


@pytest.mark.parametrize("content_type", ["application/json", "application/octet-stream"])
def test_generic_content_type_defers_to_the_body(content_type: str) -> None:
    assert parse_manifest(dumps(oci_manifest()), content_type).media_type == OCI_MANIFEST
    assert parse_manifest(dumps(docker_list()), content_type).media_type == DOCKER_LIST


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        (oci_manifest(), DOCKER_MANIFEST),
        (oci_manifest(), OCI_INDEX),
        (docker_manifest(), OCI_MANIFEST),
        (oci_index(), DOCKER_LIST),
        (docker_list(), OCI_INDEX),
    ],
)
def test_content_type_that_contradicts_the_body_is_invalid(
    doc: dict[str, Any], content_type: str
) -> None:
    with pytest.raises(ManifestInvalid, match="does not match Content-Type"):
        parse_manifest(dumps(doc), content_type)


def test_index_content_type_for_an_image_body_without_media_type() -> None:
    with pytest.raises(ManifestInvalid, match="manifests must be a list"):
        parse_manifest(dumps(without(oci_manifest(), "mediaType")), OCI_INDEX)


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [
        pytest.param(without(oci_manifest(), "mediaType"), None, id="no-type-anywhere"),
        pytest.param(without(oci_manifest(), "mediaType"), "application/json", id="generic"),
        pytest.param(
            oci_manifest(mediaType="application/vnd.docker.distribution.manifest.v1+json"),
            None,
            id="docker-schema1-body",
        ),
        pytest.param(
            without(oci_manifest(), "mediaType"),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            id="docker-schema1-signed",
        ),
        pytest.param(
            oci_manifest(mediaType="application/vnd.oci.image.config.v1+json"),
            None,
            id="config-type",
        ),
        pytest.param(oci_manifest(mediaType=5), None, id="numeric-media-type"),
        pytest.param(oci_manifest(mediaType=""), None, id="empty-media-type"),
        pytest.param(oci_manifest(mediaType=OCI_MANIFEST.upper()), None, id="uppercase"),
    ],
)
def test_unsupported_media_types_are_invalid(doc: dict[str, Any], content_type: str | None) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(dumps(doc), content_type)
    assert caught.value.code == "MANIFEST_INVALID"


@pytest.mark.parametrize(
    ("media_type", "content_type"),
    [([OCI_MANIFEST], None), ({"type": OCI_MANIFEST}, "application/json")],
    ids=["list-no-content-type", "object-generic-content-type"],
)
def test_unhashable_media_type_is_invalid(media_type: Any, content_type: str | None) -> None:
    with pytest.raises(ManifestInvalid):
        parse_manifest(dumps(oci_manifest(mediaType=media_type)), content_type)


# -- invalid documents -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"not json", id="text"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'"manifest"', id="string"),
        pytest.param(b"2", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(dumps(oci_manifest()) + b"{}", id="trailing-data"),
    ],
)
def test_non_objects_are_invalid(body: bytes) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(body, OCI_MANIFEST)
    assert type(caught.value) is ManifestInvalid


def _broken(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """`doc` with the value at `path` replaced, or removed when `value` is `_MISSING`."""
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _MISSING:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_MISSING = object()

INVALID_IMAGES = {
    "schema-version-missing": (("schemaVersion",), _MISSING),
    "schema-version-1": (("schemaVersion",), 1),
    "schema-version-3": (("schemaVersion",), 3),
    "schema-version-string": (("schemaVersion",), "2"),
    "config-missing": (("config",), _MISSING),
    "config-null": (("config",), None),
    "config-list": (("config",), []),
    "config-string": (("config",), CONFIG),
    "config-media-type-missing": (("config", "mediaType"), _MISSING),
    "config-media-type-empty": (("config", "mediaType"), ""),
    "config-media-type-number": (("config", "mediaType"), 1),
    "config-digest-missing": (("config", "digest"), _MISSING),
    "config-digest-number": (("config", "digest"), 12),
    "config-digest-bad-hex": (("config", "digest"), "sha256:" + "z" * 64),
    "config-digest-uppercase": (("config", "digest"), "sha256:" + "C" * 64),
    "config-digest-short": (("config", "digest"), "sha256:abc"),
    "config-digest-unknown-algorithm": (("config", "digest"), "md5:" + "a" * 32),
    "config-size-missing": (("config", "size"), _MISSING),
    "config-size-negative": (("config", "size"), -1),
    "config-size-float": (("config", "size"), 100.0),
    "config-size-string": (("config", "size"), "100"),
    "config-size-bool": (("config", "size"), True),
    "config-size-null": (("config", "size"), None),
    "layers-missing": (("layers",), _MISSING),
    "layers-null": (("layers",), None),
    "layers-object": (("layers",), {"0": {}}),
    "layers-string": (("layers",), "none"),
    "layer-null": (("layers", 0), None),
    "layer-string": (("layers", 0), LAYER1),
    "layer-media-type-missing": (("layers", 0, "mediaType"), _MISSING),
    "layer-digest-missing": (("layers", 0, "digest"), _MISSING),
    "layer-digest-bad": (("layers", 0, "digest"), "sha256:" + "1" * 63),
    "layer-size-negative": (("layers", 0, "size"), -5),
    "layer-size-false": (("layers", 0, "size"), False),
    "subject-string": (("subject",), SUBJECT),
    "subject-list": (("subject",), []),
    "subject-without-digest": (("subject",), {"mediaType": OCI_MANIFEST, "size": 1}),
    "subject-bad-digest": (("subject",), descriptor(OCI_MANIFEST, "sha256:xyz", 1)),
    "artifact-type-empty": (("artifactType",), ""),
    "artifact-type-number": (("artifactType",), 7),
    "artifact-type-list": (("artifactType",), [SBOM]),
    "annotations-list": (("annotations",), ["a=b"]),
    "annotations-string": (("annotations",), "a=b"),
    "annotations-number-value": (("annotations",), {"a": 1}),
    "annotations-null-value": (("annotations",), {"a": None}),
    "annotations-object-value": (("annotations",), {"a": {"b": "c"}}),
}


@pytest.mark.parametrize(("path", "value"), INVALID_IMAGES.values(), ids=INVALID_IMAGES.keys())
def test_invalid_image_manifests(path: tuple[Any, ...], value: Any) -> None:
    for doc, media_type in [(oci_manifest(), OCI_MANIFEST), (docker_manifest(), DOCKER_MANIFEST)]:
        body = dumps(_broken(doc, path, value))
        with pytest.raises(ManifestInvalid) as caught:
            parse_manifest(body, media_type)
        assert type(caught.value) is ManifestInvalid
        assert caught.value.code == "MANIFEST_INVALID"


INVALID_INDEXES = {
    "schema-version-missing": (("schemaVersion",), _MISSING),
    "schema-version-1": (("schemaVersion",), 1),
    "manifests-missing": (("manifests",), _MISSING),
    "manifests-null": (("manifests",), None),
    "manifests-object": (("manifests",), {}),
    "entry-null": (("manifests", 0), None),
    "entry-string": (("manifests", 0), CHILD1),
    "entry-media-type-missing": (("manifests", 0, "mediaType"), _MISSING),
    "entry-digest-bad": (("manifests", 0, "digest"), "sha256:" + "A" * 64),
    "entry-size-negative": (("manifests", 0, "size"), -1),
    "entry-size-string": (("manifests", 0, "size"), "528"),
    "subject-bad": (("subject",), {"mediaType": OCI_MANIFEST, "digest": SUBJECT}),
    "artifact-type-empty": (("artifactType",), ""),
    "annotations-list": (("annotations",), []),
}


@pytest.mark.parametrize(("path", "value"), INVALID_INDEXES.values(), ids=INVALID_INDEXES.keys())
def test_invalid_indexes(path: tuple[Any, ...], value: Any) -> None:
    for doc, media_type in [(oci_index(), OCI_INDEX), (docker_list(), DOCKER_LIST)]:
        body = dumps(_broken(doc, path, value))
        with pytest.raises(ManifestInvalid) as caught:
            parse_manifest(body, media_type)
        assert type(caught.value) is ManifestInvalid


def test_the_broken_fixtures_are_valid_before_breaking() -> None:
    """The invalid cases above each change one thing of a valid document."""
    for doc, media_type in [
        (oci_manifest(), OCI_MANIFEST),
        (docker_manifest(), DOCKER_MANIFEST),
        (oci_index(), OCI_INDEX),
        (docker_list(), DOCKER_LIST),
        (artifact(), OCI_MANIFEST),
    ]:
        parse_manifest(dumps(_broken(doc, ("extra",), "ignored")), media_type)


# -- size limit --------------------------------------------------------------------------------


def _padded(size: int) -> bytes:
    body = dumps(oci_manifest())
    return body + b" " * (size - len(body))


def test_manifest_at_the_size_limit_is_accepted() -> None:
    body = _padded(MAX_MANIFEST_SIZE)
    assert len(body) == MAX_MANIFEST_SIZE == 4 * 1024 * 1024
    assert parse_manifest(body, OCI_MANIFEST).body is body


def test_manifest_over_the_size_limit_is_too_large() -> None:
    with pytest.raises(ManifestTooLarge) as caught:
        parse_manifest(_padded(MAX_MANIFEST_SIZE + 1), OCI_MANIFEST)
    assert caught.value.code == "MANIFEST_INVALID"


def test_size_is_checked_before_parsing() -> None:
    with pytest.raises(ManifestTooLarge):
        parse_manifest(b"x" * (MAX_MANIFEST_SIZE + 1), OCI_MANIFEST)
