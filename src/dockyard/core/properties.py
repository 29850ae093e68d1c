"""ACR's `/acr/v1` view of repositories, tags and manifests: their attributes, their
listings (by name or by last update), and changes to their changeable attributes.

Changing attributes is never refused by a lock (that is how locks are lifted); what the
locks refuse is decided in `core.locks`, and deletes live in `core.manifests`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.common.errors import ManifestUnknown, NameUnknown, RequestInvalid
from dockyard.common.names import check_repository_name, check_tag
from dockyard.core import events
from dockyard.core.digests import parse_digest
from dockyard.core.listings import Page, page_of
from dockyard.core.locks import WIRE_NAMES
from dockyard.metadata.attributes import (
    Attributes,
    AttributeWrites,
    ManifestAttributes,
    Order,
    RepositoryAttributes,
    TagAttributes,
)
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata

_LOCK_NAMES = {wire: name for name, wire in WIRE_NAMES.items()}
# Attributes ACR shows that Dockyard does not implement: accepted only as the value it
# reports, so that a client may send back what it read.
_FIXED = {"teleportEnabled": False}
_ORDERS = {"none": Order.NAME, "timeasc": Order.TIME_ASC, "timedesc": Order.TIME_DESC}


def order_of(raw: str | None) -> Order:
    """`orderby`: timedesc or timeasc (last update time); absent, empty or none: names."""
    order = _ORDERS.get((raw or "none").lower())
    if order is None:
        raise RequestInvalid(
            f"orderby must be timedesc, timeasc or none, not {raw!r}", detail={"orderby": raw}
        )
    return order


def lock_changes(body: Any) -> dict[str, bool]:
    """A PATCH body (`{"writeEnabled": false, ...}`, only the keys to change) as changes
    of `Locks` fields."""
    if not isinstance(body, dict):
        raise RequestInvalid("the body must be a JSON object of changeable attributes")
    changes: dict[str, bool] = {}
    for key, value in body.items():
        if not isinstance(value, bool):
            raise RequestInvalid(f"{key} must be true or false", detail={key: value})
        if key in _LOCK_NAMES:
            changes[_LOCK_NAMES[key]] = value
        elif _FIXED.get(key) is not value:
            supported = ", ".join(_LOCK_NAMES)
            raise RequestInvalid(
                f"{key}={str(value).lower()} is not supported; changeable attributes: {supported}",
                detail={key: value},
            )
    return changes


class Properties:
    def __init__(self, meta: Metadata) -> None:
        self._meta = meta
        self._attributes = Attributes(meta)

    # -- reads --------------------------------------------------------------------------

    def repository(self, registry: RegistryRecord, repo: str) -> RepositoryAttributes:
        check_repository_name(repo)
        found = self._attributes.repository(registry.id, repo)
        if found is None:
            raise NameUnknown(detail={"name": repo})
        return found

    def tag(self, registry: RegistryRecord, repo: str, tag: str) -> TagAttributes:
        check_repository_name(repo)
        check_tag(tag)
        found = self._attributes.tag(registry.id, repo, tag)
        if found is None:
            raise self._unknown(registry, repo, {"name": repo, "tag": tag})
        return found

    def manifest(self, registry: RegistryRecord, repo: str, digest: str) -> ManifestAttributes:
        check_repository_name(repo)
        parse_digest(digest)
        found = self._attributes.manifest(registry.id, repo, digest)
        if found is None:
            raise self._unknown(registry, repo, {"name": repo, "digest": digest})
        return found

    def tags(
        self,
        registry: RegistryRecord,
        repo: str,
        *,
        last: str | None,
        n: int,
        orderby: str | None = None,
        digest: str | None = None,
    ) -> Page[TagAttributes]:
        """Listable tags, by name or by time; only those on `digest` if it is given."""
        check_repository_name(repo)
        if digest is not None:
            parse_digest(digest)
        found = self._attributes.tags(
            registry.id, repo, last=last, n=n + 1, order=order_of(orderby), digest=digest
        )
        if found is None:
            raise NameUnknown(detail={"name": repo})
        return page_of(found, n, lambda tag: tag.name)

    def manifests(
        self,
        registry: RegistryRecord,
        repo: str,
        *,
        last: str | None,
        n: int,
        orderby: str | None = None,
    ) -> Page[ManifestAttributes]:
        check_repository_name(repo)
        found = self._attributes.manifests(
            registry.id, repo, last=last, n=n + 1, order=order_of(orderby)
        )
        if found is None:
            raise NameUnknown(detail={"name": repo})
        return page_of(found, n, lambda manifest: manifest.digest)

    # -- changes ------------------------------------------------------------------------

    def update_repository(
        self, registry: RegistryRecord, repo: str, changes: Mapping[str, bool]
    ) -> RepositoryAttributes:
        check_repository_name(repo)
        self._update(registry, repo, changes, {})
        return self.repository(registry, repo)

    def update_tag(
        self, registry: RegistryRecord, repo: str, tag: str, changes: Mapping[str, bool]
    ) -> TagAttributes:
        check_repository_name(repo)
        check_tag(tag)
        self._update(registry, repo, changes, {"tag": tag})
        return self.tag(registry, repo, tag)

    def update_manifest(
        self, registry: RegistryRecord, repo: str, digest: str, changes: Mapping[str, bool]
    ) -> ManifestAttributes:
        check_repository_name(repo)
        parse_digest(digest)
        self._update(registry, repo, changes, {"digest": digest})
        return self.manifest(registry, repo, digest)

    def _update(
        self,
        registry: RegistryRecord,
        repo: str,
        changes: Mapping[str, bool],
        target: dict[str, str],
    ) -> None:
        """Change the locks of the repository or of its tag or manifest named in `target`,
        with its outbox event, in one transaction. No changes, no write: the caller's
        read-back still says whether the target exists."""
        if not changes:
            return
        with self._meta.transaction() as tx:
            writes = AttributeWrites(tx)
            found = writes.repository_locks(registry.id, repo)
            if found is None:
                raise NameUnknown(detail={"name": repo})
            if not writes.set_locks(found.id, changes, **target):
                raise ManifestUnknown(detail={"name": repo, **target})
            changed = events.LocksChanged(
                registry_id=registry.id,
                repository=repo,
                changes={WIRE_NAMES[name]: value for name, value in changes.items()},
                **target,
            )
            tx.emit(*changed.to_row())

    def _unknown(
        self, registry: RegistryRecord, repo: str, detail: dict[str, str]
    ) -> NameUnknown | ManifestUnknown:
        """What to say when a tag or manifest is missing: is the repository missing too?"""
        if self._attributes.repository_locks(registry.id, repo) is None:
            return NameUnknown(detail={"name": repo})
        return ManifestUnknown(detail=detail)
