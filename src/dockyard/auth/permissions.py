"""The permission model: data actions on repositories, the built-in roles that grant
them, scope-map rules, and the docker scope words clients ask for.

ACR's data actions are `content/read|write|delete` and `metadata/read|write` on
repositories, plus listing the catalog; soft-deleted items are read and restored with
`deleted/read` and `deleted/restore`, which only Owner, Contributor and the admin user
have (scope maps cannot grant them). Everything here is pure and table-driven."""

from __future__ import annotations

from dataclasses import dataclass, field

from dockyard.common.names import NAME_PATTERN as _NAME

READ = "content/read"
WRITE = "content/write"
DELETE = "content/delete"
META_READ = "metadata/read"
META_WRITE = "metadata/write"
ACTIONS = (READ, WRITE, DELETE, META_READ, META_WRITE)
ALL = frozenset(ACTIONS)
DELETED_READ = "deleted/read"
DELETED_RESTORE = "deleted/restore"
# Quarantined artifacts (ACR's `quarantinedArtifacts/read|write` data actions): pulling
# what a registry's quarantine policy holds back, and setting its quarantine state. Only
# the AcrQuarantine roles, Owner, Contributor and the admin user have them (scope maps
# cannot grant them); no token scope word asks for them: they are checked against the
# caller's grants when a quarantined manifest is pulled or its state set.
QUARANTINE_READ = "quarantinedArtifacts/read"
QUARANTINE_WRITE = "quarantinedArtifacts/write"
PRIVILEGED = ALL | {DELETED_READ, DELETED_RESTORE, QUARANTINE_READ, QUARANTINE_WRITE}

# What each built-in role grants, and whether it may list the catalog.
ROLES: dict[str, tuple[frozenset[str], bool]] = {
    "AcrPull": (frozenset({READ, META_READ}), True),
    "AcrPush": (frozenset({READ, WRITE, META_READ, META_WRITE}), True),
    "AcrDelete": (frozenset({DELETE, META_READ}), True),
    "AcrImageSigner": (frozenset({READ, WRITE, META_READ}), True),
    # ACR lists only the quarantine actions; pulling a quarantined image needs a pull
    # token too, which ACR's own walkthrough gets with these roles alone.
    "AcrQuarantineReader": (frozenset({READ, META_READ, QUARANTINE_READ}), True),
    "AcrQuarantineWriter": (
        frozenset({READ, META_READ, QUARANTINE_READ, QUARANTINE_WRITE}),
        True,
    ),
    "Reader": (frozenset({READ, META_READ}), True),
    "Contributor": (PRIVILEGED, True),
    "Owner": (PRIVILEGED, True),
    "Container Registry Repository Reader": (frozenset({READ, META_READ}), False),
    "Container Registry Repository Writer": (
        frozenset({READ, WRITE, META_READ, META_WRITE}),
        False,
    ),
    "Container Registry Repository Contributor": (ALL, False),
    "Container Registry Repository Catalog Lister": (frozenset(), True),
    # Control-plane roles only (`auth.management`): no data access.
    "Container Registry Contributor and Data Access Configuration Administrator": (
        frozenset(),
        False,
    ),
    "Container Registry Configuration Reader and Data Access Configuration Reader": (
        frozenset(),
        False,
    ),
}

# Docker token-scope words (what `repository:<name>:<word>` asks for) -> data actions.
SCOPE_WORDS: dict[str, frozenset[str]] = {
    "pull": frozenset({READ}),
    "push": frozenset({WRITE}),
    "delete": frozenset({DELETE}),
    "metadata_read": frozenset({META_READ}),
    "metadataRead": frozenset({META_READ}),
    "metadata_write": frozenset({META_WRITE}),
    "metadataWrite": frozenset({META_WRITE}),
    "deleted_read": frozenset({DELETED_READ}),
    "deleted_restore": frozenset({DELETED_RESTORE}),
    "*": ALL,
}


def check_repository_pattern(pattern: str) -> str:
    """A repository name, `prefix/*` or `*`: one wildcard, only as the whole or the end."""
    if pattern == "*":
        return pattern
    name = pattern.removesuffix("/*")
    if "*" in name or not _NAME.fullmatch(name):
        raise ValueError(f"invalid repository pattern {pattern!r}: use NAME, PREFIX/* or *")
    return pattern


def pattern_matches(pattern: str, repository: str) -> bool:
    if pattern == "*":
        return True
    if pattern.endswith("/*"):
        return repository.startswith(pattern[:-1])
    return pattern == repository


@dataclass(frozen=True)
class Rule:
    """Actions allowed on the repositories a pattern matches."""

    pattern: str
    actions: frozenset[str]


@dataclass(frozen=True)
class Grants:
    """Everything a principal may do in one registry. Rules are additive."""

    rules: tuple[Rule, ...] = ()
    catalog: bool = False
    everything: bool = False  # the admin user

    def actions_on(self, repository: str) -> frozenset[str]:
        if self.everything:
            return PRIVILEGED
        allowed: set[str] = set()
        for rule in self.rules:
            if pattern_matches(rule.pattern, repository):
                allowed |= rule.actions
        return frozenset(allowed)

    def allows(self, repository: str, action: str) -> bool:
        return action in self.actions_on(repository)

    def allows_under(self, prefix: str, action: str) -> bool:
        """Whether `action` is allowed on every repository under `prefix` ('' for every
        repository): a single rule must cover them all, since any may come to exist."""
        if self.everything:
            return True
        return any(
            action in rule.actions
            and (
                rule.pattern == "*"
                or (
                    bool(prefix)
                    and rule.pattern.endswith("/*")
                    and (prefix + "/").startswith(rule.pattern[:-1])
                )
            )
            for rule in self.rules
        )

    def may_list_catalog(self) -> bool:
        return self.everything or self.catalog

    def may_list_deleted(self) -> bool:
        """`registry:deleted_catalog:*`: soft-deleted items readable in every repository."""
        return self.everything or any(
            r.pattern == "*" and DELETED_READ in r.actions for r in self.rules
        )


def role_rules(role: str, repository: str | None) -> tuple[Rule, bool]:
    """The rule a role assignment grants (at registry scope: every repository)."""
    actions, catalog = ROLES[role]
    return Rule(repository or "*", actions), catalog and repository is None


@dataclass(frozen=True)
class ScopeMapAction:
    repository: str
    action: str


def parse_scope_map_action(text: str) -> ScopeMapAction:
    """`repositories/<pattern>/<content|metadata>/<verb>`, as ACR's scope maps write it."""
    if not text.startswith("repositories/"):
        raise ValueError(f"scope map action must start with 'repositories/': {text!r}")
    body = text.removeprefix("repositories/")
    for action in ACTIONS:
        if body.endswith("/" + action):
            repository = body[: -len(action) - 1]
            return ScopeMapAction(check_repository_pattern(repository), action)
    raise ValueError(f"unknown action in {text!r}; use one of {', '.join(ACTIONS)}")


def scope_map_rules(actions: list[str]) -> tuple[Rule, ...]:
    by_pattern: dict[str, set[str]] = {}
    for text in actions:
        parsed = parse_scope_map_action(text)
        by_pattern.setdefault(parsed.repository, set()).add(parsed.action)
    return tuple(Rule(p, frozenset(a)) for p, a in by_pattern.items())


@dataclass(frozen=True)
class Scope:
    """One docker token scope: `repository:<name>:<words>` or `registry:catalog:*`."""

    type: str
    name: str
    words: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.words)}"


def parse_scope(text: str) -> Scope | None:
    """Parse one scope string; None for what this registry does not know (ignored)."""
    kind, _, rest = text.partition(":")
    name, _, words = rest.rpartition(":")
    if kind not in ("repository", "registry", "repository(plugin)") or not name:
        return None
    return Scope(
        "repository" if kind.startswith("repository") else kind,
        name,
        tuple(w for w in words.split(",") if w),
    )


def granted_words(grants: Grants, scope: Scope) -> tuple[str, ...]:
    """The subset of a scope's words the grants allow: what goes into an access token."""
    if scope.type == "registry":
        ok = (scope.name == "catalog" and grants.may_list_catalog()) or (
            scope.name == "deleted_catalog" and grants.may_list_deleted()
        )
        return ("*",) if ok else ()
    allowed = grants.actions_on(scope.name)
    result = []
    for word in scope.words:
        wanted = SCOPE_WORDS.get(word)
        if wanted is not None and wanted <= allowed:
            result.append(word)
    return tuple(result)
