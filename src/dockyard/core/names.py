"""The spec's grammar for repository names and tags."""

from __future__ import annotations

import re

from dockyard.core.errors import NameInvalid, TagInvalid

NAME_PATTERN = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255


def check_repository_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise NameInvalid(f"invalid repository name: {name!r}", detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise TagInvalid(f"invalid tag: {tag!r}", detail={"tag": tag})
    return tag
