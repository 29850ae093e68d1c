"""ACR's artifact cache rules and credential sets: what a rule may say, and which rule
covers a repository.

A rule maps a target repository of a registry to a source repository upstream: a name
to a name (`ubuntu` => `docker.io/library/ubuntu`), or, with a trailing `/*`, every
repository under a prefix (`mirror/*` => `127.0.0.1:5001/*`). As on ACR: at most 1,000
rules per registry; two rules never have the same target, and two wildcard targets
never nest (`a/*` and `a/b/*`), but a static rule may sit under a wildcard one and wins;
a static target must not exist yet; Docker Hub's official images get `library/`. A
credential set holds the login for one upstream login server; its password is sealed
with the server's key (`auth/secret_box.py`) and never shown.

A rule whose source is a registry of this server reads it as its author (the identity
that made it): it is refused unless the author may pull every repository it covers
there, and every pull through it checks the author's right again (`mirroring.imports`'s
`SourceReads`), so a rule never lets its pullers read what its author could not."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.auth.secret_box import SecretBox
from dockyard.common.errors import RequestInvalid
from dockyard.common.names import check_repository_name, registry_host
from dockyard.metadata.cache_rules import (
    CacheRuleRecord,
    CacheRuleStore,
    CacheRuleWrites,
    CredentialSetRecord,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata
from dockyard.mirroring.imports import Reader, SourceReadDenied, SourceReads
from dockyard.mirroring.upstream import Credentials

MAX_CACHE_RULES = 1000
_NAME = re.compile(r"^[a-zA-Z0-9-]{5,50}$")
_DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_WILDCARD = "*"


class CacheRuleInvalid(RequestInvalid):
    """A rule or credential set that cannot be made as asked (names, limits, overlap,
    unknown references)."""


@dataclass(frozen=True)
class UpstreamImage:
    """Where a pull that missed in a cached repository is fetched from."""

    rule: str
    host: str
    repository: str
    credentials: Credentials | None
    author: Reader  # as whom a source that is a registry of this server is read


@dataclass(frozen=True)
class _Source:
    host: str
    path: str  # the repository, or the prefix of a wildcard ('' for host/*)
    wildcard: bool


def _check_name(kind: str, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise CacheRuleInvalid(f"{kind} name {name!r} must be 5-50 letters, digits or dashes")


def _parse_source(text: str) -> _Source:
    host, slash, path = text.strip().partition("/")
    if not slash or not ("." in host or ":" in host or host.lower() == "localhost"):
        raise CacheRuleInvalid(
            f"source repository {text!r} must start with a registry host "
            "(docker.io/library/ubuntu, 127.0.0.1:5001/library/busybox)"
        )
    host = registry_host(host)
    wildcard = path == _WILDCARD or path.endswith("/" + _WILDCARD)
    if wildcard:
        path = path.removesuffix(_WILDCARD).removesuffix("/")
    if path:
        if host.lower() in _DOCKER_HUB and "/" not in path and not wildcard:
            path = f"library/{path}"
        check_repository_name(path)
    elif not wildcard:
        raise CacheRuleInvalid(f"source repository {text!r} names no repository")
    return _Source(host, path, wildcard)


def _parse_target(text: str) -> tuple[str, bool]:
    """(name or wildcard prefix, wildcard?); `*` is the prefix ''."""
    text = text.strip()
    wildcard = text == _WILDCARD or text.endswith("/" + _WILDCARD)
    prefix = text.removesuffix(_WILDCARD).removesuffix("/") if wildcard else text
    if prefix:
        check_repository_name(prefix)
    return prefix, wildcard


def _nested(a: str, b: str) -> bool:
    """Whether wildcard prefixes `a` and `b` cover common repositories."""
    return a == b or not a or not b or a.startswith(b + "/") or b.startswith(a + "/")


def _upstream_repository(rule: CacheRuleRecord, repo: str) -> tuple[str, str] | None:
    """(host, upstream repository) when `rule` covers `repo`."""
    prefix, wildcard = _parse_target(rule.target_repository)
    source = _parse_source(rule.source_repository)
    if not wildcard:
        return (source.host, source.path) if repo == prefix else None
    if prefix and not repo.startswith(prefix + "/"):
        return None
    rest = repo[len(prefix) + 1 :] if prefix else repo
    path = f"{source.path}/{rest}" if source.path else rest
    if source.host in _DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return source.host, path


class CacheRules:
    def __init__(self, meta: Metadata, box: SecretBox, reads: SourceReads) -> None:
        self._meta = meta
        self._store = CacheRuleStore(meta)
        self._box = box
        self._reads = reads

    # -- the pull path ---------------------------------------------------------------

    def upstream_for(self, registry: RegistryRecord, repo: str) -> UpstreamImage | None:
        """The upstream of the rule covering `repo`: a static rule, else the wildcard
        rule with the longest prefix; None when no rule does."""
        best: tuple[int, CacheRuleRecord, tuple[str, str]] | None = None
        for rule in self._store.rules(registry.id):
            found = _upstream_repository(rule, repo)
            if found is None:
                continue
            prefix, wildcard = _parse_target(rule.target_repository)
            rank = len(prefix) if wildcard else 1 << 16
            if best is None or rank > best[0]:
                best = (rank, rule, found)
        if best is None:
            return None
        _, rule, (host, path) = best
        credentials = None
        if rule.credential_set is not None:
            (found_set,) = self._store.credential_sets(registry.id, rule.credential_set)
            credentials = Credentials(
                found_set.username, self._box.open(found_set.sealed_password, registry.id)
            )
        return UpstreamImage(rule.name, host, path, credentials, Reader(rule.created_by))

    # -- rules -------------------------------------------------------------------------

    def rules(self, registry: RegistryRecord, name: str | None = None) -> list[CacheRuleRecord]:
        found = self._store.rules(registry.id, name)
        if name is not None and not found:
            raise CacheRuleInvalid(f"no cache rule named {name!r}")
        return found

    def create_rule(
        self,
        registry: RegistryRecord,
        name: str,
        source_repository: str,
        target_repository: str,
        author: Reader,
        credential_set: str | None = None,
    ) -> CacheRuleRecord:
        """A new rule, made by `author` (the reader of a source of this server)."""
        _check_name("cache rule", name)
        source = _parse_source(source_repository)
        prefix, wildcard = _parse_target(target_repository)
        if wildcard != source.wildcard:
            raise CacheRuleInvalid("source and target are both wildcards (ending in /*) or neither")
        local = self._reads.local(source.host, registry)
        if local is not None:
            try:
                self._reads.require(local, source.path, author, prefix=source.wildcard)
            except SourceReadDenied as exc:
                raise CacheRuleInvalid(
                    f"cache rule {name!r} would read {local.login_server}, a registry of this "
                    f"server, for whoever may pull from it: {exc.message}"
                ) from None
        source_text = f"{source.host}/{source.path}" if source.path else source.host
        source_text += "/*" if wildcard else ""
        target_text = f"{prefix}/*" if wildcard and prefix else ("*" if wildcard else prefix)
        if not wildcard and self._meta.repository_exists(registry.id, prefix):
            raise CacheRuleInvalid(
                f"repository {prefix!r} exists: a cache rule's target must be a new repository"
            )
        with self._meta.transaction() as tx:
            writes = CacheRuleWrites(tx)
            existing = writes.rules(registry.id)
            if len(existing) >= MAX_CACHE_RULES:
                raise CacheRuleInvalid(f"a registry has at most {MAX_CACHE_RULES} cache rules")
            for rule in existing:
                if rule.name == name:
                    raise CacheRuleInvalid(f"a cache rule named {name!r} exists")
                other, other_wildcard = _parse_target(rule.target_repository)
                same = rule.target_repository == target_text
                if same or (wildcard and other_wildcard and _nested(prefix, other)):
                    raise CacheRuleInvalid(
                        f"target {target_text!r} overlaps cache rule {rule.name!r} "
                        f"({rule.target_repository})"
                    )
            set_id = self._credential_set_id(writes, registry, credential_set, source.host)
            writes.add_rule(registry.id, name, source_text, target_text, set_id, author.identity)
        return self.rules(registry, name)[0]

    def update_rule(
        self, registry: RegistryRecord, name: str, credential_set: str | None
    ) -> CacheRuleRecord:
        """Change the rule's credential set (None: pull anonymously), the one thing ACR
        lets change."""
        with self._meta.transaction() as tx:
            writes = CacheRuleWrites(tx)
            found = writes.rules(registry.id, name)
            if not found:
                raise CacheRuleInvalid(f"no cache rule named {name!r}")
            host = _parse_source(found[0].source_repository).host
            set_id = self._credential_set_id(writes, registry, credential_set, host)
            writes.set_rule_credential_set(registry.id, name, set_id)
        return self.rules(registry, name)[0]

    def delete_rule(self, registry: RegistryRecord, name: str) -> None:
        """The rule only: what it cached stays, as ordinary repositories."""
        with self._meta.transaction() as tx:
            if not CacheRuleWrites(tx).delete_rule(registry.id, name):
                raise CacheRuleInvalid(f"no cache rule named {name!r}")

    @staticmethod
    def _credential_set_id(
        writes: CacheRuleWrites, registry: RegistryRecord, name: str | None, host: str
    ) -> int | None:
        if name is None:
            return None
        found = writes.credential_set(registry.id, name)
        if found is None:
            raise CacheRuleInvalid(f"no credential set named {name!r}")
        if found.login_server.lower() != host:
            raise CacheRuleInvalid(
                f"credential set {name!r} is for {found.login_server}, not {host}"
            )
        return found.id

    # -- credential sets --------------------------------------------------------------

    def credential_sets(
        self, registry: RegistryRecord, name: str | None = None
    ) -> list[CredentialSetRecord]:
        found = self._store.credential_sets(registry.id, name)
        if name is not None and not found:
            raise CacheRuleInvalid(f"no credential set named {name!r}")
        return found

    def create_credential_set(
        self, registry: RegistryRecord, name: str, login_server: str, username: str, password: str
    ) -> CredentialSetRecord:
        _check_name("credential set", name)
        server = registry_host(login_server)
        if not username or not password:
            raise CacheRuleInvalid("a credential set needs a username and a password")
        with self._meta.transaction() as tx:
            writes = CacheRuleWrites(tx)
            if writes.credential_set(registry.id, name) is not None:
                raise CacheRuleInvalid(f"a credential set named {name!r} exists")
            sealed = self._box.seal(password, registry.id)
            writes.add_credential_set(registry.id, name, server, username, sealed)
        return self.credential_sets(registry, name)[0]

    def update_credential_set(
        self,
        registry: RegistryRecord,
        name: str,
        username: str | None = None,
        password: str | None = None,
    ) -> CredentialSetRecord:
        if not username and not password:
            raise CacheRuleInvalid("nothing to change: give a username and/or a password")
        with self._meta.transaction() as tx:
            writes = CacheRuleWrites(tx)
            found = writes.credential_set(registry.id, name)
            if found is None:
                raise CacheRuleInvalid(f"no credential set named {name!r}")
            sealed = self._box.seal(password, registry.id) if password else None
            writes.update_credential_set(found.id, username or None, sealed)
        return self.credential_sets(registry, name)[0]

    def delete_credential_set(self, registry: RegistryRecord, name: str) -> None:
        with self._meta.transaction() as tx:
            writes = CacheRuleWrites(tx)
            found = writes.credential_set(registry.id, name)
            if found is None:
                raise CacheRuleInvalid(f"no credential set named {name!r}")
            users = writes.rules_using(found.id)
            if users:
                raise CacheRuleInvalid(
                    f"credential set {name!r} is used by cache rule(s) {', '.join(users)}"
                )
            writes.delete_credential_set(found.id)
