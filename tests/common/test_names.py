"""`dockyard.common.names`: the OCI Distribution grammar for repository names and tags.

<name>      [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*
<reference> [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
"""

from __future__ import annotations

import pytest

from dockyard.common.errors import ManifestInvalid, NameInvalid, TagInvalid
from dockyard.common.names import MAX_NAME_LENGTH, check_repository_name, check_tag


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "0",
        "hello-world",
        "library/ubuntu",
        "a/b/c/d",
        "foo.bar",
        "foo_bar",
        "foo__bar",
        "foo-bar",
        "foo---bar",
        "a1.b2_c3__d4-e5",
        "registry.example/team/app",
        "123/456",
        "a" * MAX_NAME_LENGTH,
        "ab/" * 84 + "abc",  # 255 characters across many components
    ],
)
def test_valid_repository_names(name: str) -> None:
    assert check_repository_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("", id="empty"),
        pytest.param("Ubuntu", id="uppercase"),
        pytest.param("library/Ubuntu", id="uppercase-component"),
        pytest.param("-app", id="leading-dash"),
        pytest.param("app-", id="trailing-dash"),
        pytest.param(".app", id="leading-dot"),
        pytest.param("app.", id="trailing-dot"),
        pytest.param("_app", id="leading-underscore"),
        pytest.param("foo..bar", id="double-dot"),
        pytest.param("foo___bar", id="triple-underscore"),
        pytest.param("foo.-bar", id="mixed-separators"),
        pytest.param("foo_-bar", id="underscore-dash"),
        pytest.param("/app", id="leading-slash"),
        pytest.param("app/", id="trailing-slash"),
        pytest.param("foo//bar", id="empty-component"),
        pytest.param("foo/-bar", id="component-leading-dash"),
        pytest.param("foo bar", id="space"),
        pytest.param("foo:bar", id="colon"),
        pytest.param("foo@bar", id="at"),
        pytest.param("f\u00f6\u00f6", id="non-ascii"),
        pytest.param("foo/../bar", id="dot-dot-component"),
        pytest.param("a" * (MAX_NAME_LENGTH + 1), id="256-chars"),
        pytest.param("ab/" * 84 + "abcd", id="256-chars-components"),
        pytest.param("app\n", id="trailing-newline"),
        pytest.param("library/app\n", id="trailing-newline-path"),
    ],
)
def test_invalid_repository_names(name: str) -> None:
    with pytest.raises(NameInvalid) as caught:
        check_repository_name(name)
    assert caught.value.code == "NAME_INVALID"
    assert caught.value.detail == {"name": name}


def test_name_length_limit_is_255() -> None:
    assert MAX_NAME_LENGTH == 255
    assert len("ab/" * 84 + "abc") == 255


@pytest.mark.parametrize(
    "tag",
    [
        "latest",
        "v1.0.0",
        "1",
        "_private",
        "A",
        "UPPER-case_mix.1",
        "1.0-rc_1",
        "sha256-" + "a" * 64 + ".sig",  # cosign-style signature tag
        "a" * 128,
        "_" + "-" * 127,
    ],
)
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize(
    "tag",
    [
        pytest.param("", id="empty"),
        pytest.param(".hidden", id="leading-dot"),
        pytest.param("-dash", id="leading-dash"),
        pytest.param("a" * 129, id="129-chars"),
        pytest.param("with space", id="space"),
        pytest.param("tag:x", id="colon"),
        pytest.param("tag/x", id="slash"),
        pytest.param("tag+x", id="plus"),
        pytest.param("tag@x", id="at"),
        pytest.param("t\u00e4g", id="non-ascii"),
        pytest.param("latest\n", id="trailing-newline"),
    ],
)
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(TagInvalid) as caught:
        check_tag(tag)
    # The OCI spec has no tag error code: an invalid tag is an invalid manifest push.
    assert isinstance(caught.value, ManifestInvalid)
    assert caught.value.code == "MANIFEST_INVALID"
    assert caught.value.detail == {"tag": tag}
