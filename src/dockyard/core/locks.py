"""ACR's locks: which changeable attribute refuses which operation.

Locks sit on repositories, tags and manifests, and bind everyone (they are not
permissions). Callers fetch the flags in the same transaction as the change they guard
(or, for pulls, in the same statement as the manifest) and ask here; a refusal is a
`Locked` error that names the lock and the request that lifts it.

- writeEnabled=false: on a repository, no push (uploads, mounts, manifests) and no delete
  of anything in it; on a tag, it is not moved and not deleted; on a manifest, it is not
  deleted.
- deleteEnabled=false: the item is not deleted. On a repository this guards the
  repository delete only: its images can still be deleted one by one.
- readEnabled=false: no pull of the manifest (by that tag, by that digest, or anything in
  that repository), and no blob read in that repository.
- listEnabled=false: hidden from listings (the queries filter; nothing to check here).

A delete that would take a locked item with it is refused too: deleting a manifest
deletes its tags, deleting a repository deletes everything in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dockyard.common.errors import Locked
from dockyard.metadata.records import Locks, ReadFlags

# The attributes' names in ACR's API, which is where a user lifts them.
WIRE_NAMES = {
    "write_enabled": "writeEnabled",
    "delete_enabled": "deleteEnabled",
    "read_enabled": "readEnabled",
    "list_enabled": "listEnabled",
}


@dataclass(frozen=True)
class Target:
    """What a lock is on: a repository, or one of its tags or manifests."""

    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.tag is not None:
            return f'tag "{self.repository}:{self.tag}"'
        if self.digest is not None:
            return f'manifest "{self.repository}@{self.digest}"'
        return f'repository "{self.repository}"'

    @property
    def path(self) -> str:
        """Where its attributes are changed."""
        if self.tag is not None:
            return f"/acr/v1/{self.repository}/_tags/{self.tag}"
        if self.digest is not None:
            return f"/acr/v1/{self.repository}/_manifests/{self.digest}"
        return f"/acr/v1/{self.repository}"


def require(enabled: bool, target: Target, lock: str, operation: str) -> None:
    """Refuse `operation` unless the `lock` attribute (a `Locks` field name) is enabled."""
    if enabled:
        return
    wire = WIRE_NAMES[lock]
    raise Locked(
        f"{operation} refused: {target} has {wire}=false; to lift the lock, "
        f'PATCH {target.path} with {{"{wire}": true}}',
        detail={
            "lock": wire,
            "repository": target.repository,
            **({"tag": target.tag} if target.tag is not None else {}),
            **({"digest": target.digest} if target.digest is not None else {}),
        },
    )


def check_push(repo: str, locks: Locks) -> None:
    require(locks.write_enabled, Target(repo), "write_enabled", "push")


def check_tag_move(repo: str, tag: str, locks: Locks) -> None:
    require(locks.write_enabled, Target(repo, tag=tag), "write_enabled", "moving the tag")


def check_tag_delete(repo: str, repo_locks: Locks, tag: str, tag_locks: Locks) -> None:
    require(repo_locks.write_enabled, Target(repo), "write_enabled", "delete")
    _require_deletable(Target(repo, tag=tag), tag_locks, "delete")


def check_manifest_delete(
    repo: str, repo_locks: Locks, digest: str, manifest_locks: Locks, tags: Mapping[str, Locks]
) -> None:
    """A manifest and every tag on it, which go with it."""
    require(repo_locks.write_enabled, Target(repo), "write_enabled", "delete")
    _require_deletable(Target(repo, digest=digest), manifest_locks, "delete")
    for tag, locks in sorted(tags.items()):
        _require_deletable(Target(repo, tag=tag), locks, "delete of its manifest")


def check_repository_delete(
    repo: str, repo_locks: Locks, tags: Mapping[str, Locks], manifests: Mapping[str, Locks]
) -> None:
    """The repository and everything in it."""
    _require_deletable(Target(repo), repo_locks, "repository delete")
    for digest, locks in sorted(manifests.items()):
        _require_deletable(Target(repo, digest=digest), locks, "repository delete")
    for tag, locks in sorted(tags.items()):
        _require_deletable(Target(repo, tag=tag), locks, "repository delete")


def check_pull(repo: str, tag: str | None, digest: str, read: ReadFlags) -> None:
    """A manifest read by `tag`, or by digest when `tag` is None."""
    require(read.repository, Target(repo), "read_enabled", "pull")
    if tag is not None:
        require(read.tag, Target(repo, tag=tag), "read_enabled", "pull")
    require(read.manifest, Target(repo, digest=digest), "read_enabled", "pull")


def check_blob_delete(repo: str, locks: Locks) -> None:
    require(locks.write_enabled, Target(repo), "write_enabled", "blob delete")


def check_blob_read(repo: str, readable: bool) -> None:
    require(readable, Target(repo), "read_enabled", "blob read")


def _require_deletable(target: Target, locks: Locks, operation: str) -> None:
    require(locks.write_enabled, target, "write_enabled", operation)
    require(locks.delete_enabled, target, "delete_enabled", operation)
