"""`dockyard.core.locks`: which lock refuses which operation, and what the refusal says.
Pure rules over `Locks` values; the tests of core.manifests, core.uploads, core.blobs
and the integration tests check that every path asks them."""

from __future__ import annotations

import pytest

from dockyard.common.errors import Denied, Locked
from dockyard.core import locks
from dockyard.metadata.records import Locks, ReadFlags

D1 = "sha256:" + "1" * 64
OPEN = Locks()
NO_WRITE = Locks(write_enabled=False)
NO_DELETE = Locks(delete_enabled=False)


def refusal(call, *args) -> Locked:
    with pytest.raises(Locked) as caught:
        call(*args)
    return caught.value


def test_a_refusal_names_the_lock_and_how_to_lift_it() -> None:
    error = refusal(locks.check_tag_move, "team/app", "v1", NO_WRITE)
    assert isinstance(error, Denied) and error.code == "DENIED"
    assert error.message == (
        'moving the tag refused: tag "team/app:v1" has writeEnabled=false; to lift the lock, '
        'PATCH /acr/v1/team/app/_tags/v1 with {"writeEnabled": true}'
    )
    assert error.detail == {"lock": "writeEnabled", "repository": "team/app", "tag": "v1"}


@pytest.mark.parametrize(
    ("target", "text", "path"),
    [
        (locks.Target("a/b"), 'repository "a/b"', "/acr/v1/a/b"),
        (locks.Target("a/b", tag="v1"), 'tag "a/b:v1"', "/acr/v1/a/b/_tags/v1"),
        (locks.Target("a/b", digest=D1), f'manifest "a/b@{D1}"', f"/acr/v1/a/b/_manifests/{D1}"),
    ],
)
def test_targets_say_what_and_where(target: locks.Target, text: str, path: str) -> None:
    assert str(target) == text
    assert target.path == path


def test_push_needs_a_writable_repository() -> None:
    locks.check_push("app", NO_DELETE)
    assert refusal(locks.check_push, "app", NO_WRITE).detail["lock"] == "writeEnabled"


def test_a_tag_that_may_not_be_deleted_may_still_move() -> None:
    locks.check_tag_move("app", "v1", NO_DELETE)


@pytest.mark.parametrize(
    ("repo", "tag", "refused_by"),
    [
        (OPEN, OPEN, None),
        (NO_DELETE, OPEN, None),  # a repository's deleteEnabled guards the repository only
        (NO_WRITE, OPEN, {"lock": "writeEnabled", "repository": "app"}),
        (OPEN, NO_WRITE, {"lock": "writeEnabled", "repository": "app", "tag": "v1"}),
        (OPEN, NO_DELETE, {"lock": "deleteEnabled", "repository": "app", "tag": "v1"}),
    ],
)
def test_tag_delete(repo: Locks, tag: Locks, refused_by: dict | None) -> None:
    if refused_by is None:
        locks.check_tag_delete("app", repo, "v1", tag)
        return
    assert refusal(locks.check_tag_delete, "app", repo, "v1", tag).detail == refused_by


@pytest.mark.parametrize(
    ("repo", "manifest", "tags", "refused_by"),
    [
        (OPEN, OPEN, {"v1": OPEN}, None),
        (NO_DELETE, OPEN, {}, None),
        (NO_WRITE, OPEN, {}, {"lock": "writeEnabled", "repository": "app"}),
        (OPEN, NO_WRITE, {}, {"lock": "writeEnabled", "repository": "app", "digest": D1}),
        (OPEN, NO_DELETE, {}, {"lock": "deleteEnabled", "repository": "app", "digest": D1}),
        # Deleting a manifest deletes its tags: a locked tag keeps it.
        (
            OPEN,
            OPEN,
            {"a": OPEN, "b": NO_DELETE},
            {"lock": "deleteEnabled", "repository": "app", "tag": "b"},
        ),
        (OPEN, OPEN, {"a": NO_WRITE}, {"lock": "writeEnabled", "repository": "app", "tag": "a"}),
    ],
)
def test_manifest_delete(repo: Locks, manifest: Locks, tags: dict, refused_by: dict | None) -> None:
    if refused_by is None:
        locks.check_manifest_delete("app", repo, D1, manifest, tags)
        return
    assert refusal(locks.check_manifest_delete, "app", repo, D1, manifest, tags).detail == (
        refused_by
    )


@pytest.mark.parametrize(
    ("repo", "tags", "manifests", "refused_by"),
    [
        (OPEN, {"v1": OPEN}, {D1: OPEN}, None),
        (NO_DELETE, {}, {}, {"lock": "deleteEnabled", "repository": "app"}),
        (NO_WRITE, {}, {}, {"lock": "writeEnabled", "repository": "app"}),
        (OPEN, {}, {D1: NO_DELETE}, {"lock": "deleteEnabled", "repository": "app", "digest": D1}),
        (
            OPEN,
            {"v1": NO_WRITE},
            {D1: OPEN},
            {"lock": "writeEnabled", "repository": "app", "tag": "v1"},
        ),
        # Read and list locks do not protect from deletion.
        (Locks(read_enabled=False, list_enabled=False), {}, {}, None),
    ],
)
def test_repository_delete(repo: Locks, tags: dict, manifests: dict, refused_by: dict | None):
    if refused_by is None:
        locks.check_repository_delete("app", repo, tags, manifests)
        return
    error = refusal(locks.check_repository_delete, "app", repo, tags, manifests)
    assert error.detail == refused_by
    assert error.message.startswith("repository delete refused")


@pytest.mark.parametrize(
    ("tag", "read", "refused_by"),
    [
        ("v1", ReadFlags(True, True, True), None),
        ("v1", ReadFlags(False, True, True), {"lock": "readEnabled", "repository": "app"}),
        (
            "v1",
            ReadFlags(True, False, True),
            {"lock": "readEnabled", "repository": "app", "tag": "v1"},
        ),
        (
            "v1",
            ReadFlags(True, True, False),
            {"lock": "readEnabled", "repository": "app", "digest": D1},
        ),
        # The repository's lock is named first when several apply.
        ("v1", ReadFlags(False, False, False), {"lock": "readEnabled", "repository": "app"}),
        # By digest no tag is involved (the statement reports its flag as True).
        (
            None,
            ReadFlags(True, True, False),
            {"lock": "readEnabled", "repository": "app", "digest": D1},
        ),
    ],
)
def test_pull(tag: str | None, read: ReadFlags, refused_by: dict | None) -> None:
    if refused_by is None:
        locks.check_pull("app", tag, D1, read)
        return
    error = refusal(locks.check_pull, "app", tag, D1, read)
    assert error.detail == refused_by
    assert error.message.startswith("pull refused")


def test_blob_reads_and_deletes() -> None:
    locks.check_blob_read("app", True)
    assert refusal(locks.check_blob_read, "app", False).detail["lock"] == "readEnabled"
    locks.check_blob_delete("app", NO_DELETE)
    assert refusal(locks.check_blob_delete, "app", NO_WRITE).message.startswith(
        "blob delete refused"
    )
