"""The spec's grammar for repository names and tags, and the one spelling of a
registry's `HOST[:PORT]` that this server compares."""

from __future__ import annotations

import ipaddress
import re

from dockyard.common.errors import NameInvalid, RegistryHostInvalid, TagInvalid

NAME_PATTERN = re.compile(
    r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
MAX_NAME_LENGTH = 255
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(
    rf"(?P<name>{_LABEL}(?:\.{_LABEL})*\.?|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?"
)


def check_repository_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise NameInvalid(f"invalid repository name: {name!r}", detail={"name": name})
    return name


def check_tag(tag: str) -> str:
    if not _TAG.fullmatch(tag):
        raise TagInvalid(f"invalid tag: {tag!r}", detail={"tag": tag})
    return tag


def registry_host(text: str) -> str:
    """`text`, a registry's `HOST[:PORT]`, in the one spelling this server compares with
    its login servers: lower case, the name without a trailing dot, the port a plain
    number. Anything else (spaces, control characters, a scheme, a path, a user, a port
    past 65535) is refused, so that the registry an import or a cache rule is checked
    against is the one it reads."""
    found = _HOST.fullmatch(text.lower())
    port = None if found is None or found["port"] is None else int(found["port"])
    name = None if found is None else _host_name(found["name"].removesuffix("."))
    if name is None or (port is not None and not 0 < port < 65536):
        raise RegistryHostInvalid(f"{text!r} is not a registry's HOST[:PORT]")
    return name if port is None else f"{name}:{port}"


def _host_name(name: str) -> str | None:
    """A host name as is, an IPv6 address in its short form (None if it is none)."""
    if not name.startswith("["):
        return name if len(name) <= 253 else None
    try:
        return f"[{ipaddress.IPv6Address(name[1:-1]).compressed}]"
    except ValueError:
        return None
