"""A webhook's scope: which repositories and tags its events come from.

ACR's forms: empty (every event), `repo:tag`, `repo:*` (every tag), and `repo`, which
the management API documents as `repo:latest`. `*` in either part matches any run of
characters (`team/*:v*`). An event with no tag (a push by digest, a manifest delete
that took no tag) matches only a scope whose tag part is `*` or empty; a delete matches
through any of the tags it took."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SCOPE = 255
_REPOSITORY = re.compile(r"^[a-z0-9._/*-]+$")
_TAG = re.compile(r"^[A-Za-z0-9_.*-]+$")


class ScopeInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Scope:
    repository: re.Pattern[str] | None  # None: every repository
    tag: re.Pattern[str] | None  # None: every tag, and events with none

    def matches(self, repository: str, tags: tuple[str, ...]) -> bool:
        if self.repository is None:
            return True
        if not self.repository.fullmatch(repository):
            return False
        return self.tag is None or any(self.tag.fullmatch(tag) for tag in tags)


def parse_scope(text: str) -> Scope:
    if len(text) > MAX_SCOPE:
        raise ScopeInvalid(f"a scope is at most {MAX_SCOPE} characters")
    if not text:
        return Scope(None, None)
    repository, colon, tag = text.partition(":")
    if not colon:
        tag = "latest"
    if not _REPOSITORY.fullmatch(repository) or not _TAG.fullmatch(tag):
        raise ScopeInvalid(
            f"scope {text!r} must be REPOSITORY:TAG, REPOSITORY:* or REPOSITORY (lower-case "
            "repository, * matching anything)"
        )
    return Scope(_pattern(repository), None if tag == "*" else _pattern(tag))


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")))
