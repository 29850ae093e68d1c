"""`dockyard.auth.permissions`: who may read and restore soft-deleted items (Owner,
Contributor, the admin user; no other role, no scope map) and list the deleted catalog."""

from __future__ import annotations

import pytest

from dockyard.auth.permissions import Grants, Scope, granted_words, role_rules

DELETED_WORDS = Scope("repository", "app", ("pull", "deleted_read", "deleted_restore"))
DELETED_CATALOG = Scope("registry", "deleted_catalog", ("*",))


def grants_of(role: str, repository: str | None = None) -> Grants:
    rule, catalog = role_rules(role, repository)
    return Grants(rules=(rule,), catalog=catalog)


@pytest.mark.parametrize("role", ["Owner", "Contributor"])
def test_privileged_roles_read_and_restore_deleted_items(role: str) -> None:
    grants = grants_of(role)
    assert granted_words(grants, DELETED_WORDS) == ("pull", "deleted_read", "deleted_restore")
    assert granted_words(grants, DELETED_CATALOG) == ("*",)
    # On one repository only: no registry-wide deleted catalog.
    assert granted_words(grants_of(role, "app"), DELETED_CATALOG) == ()


@pytest.mark.parametrize(
    "role", ["AcrPull", "AcrPush", "AcrDelete", "Container Registry Repository Contributor"]
)
def test_other_roles_do_not(role: str) -> None:
    grants = grants_of(role)
    assert "deleted_read" not in granted_words(grants, DELETED_WORDS)
    assert granted_words(grants, DELETED_CATALOG) == ()


def test_the_admin_user_may_everything() -> None:
    admin = Grants(everything=True)
    assert granted_words(admin, DELETED_WORDS) == DELETED_WORDS.words
    assert granted_words(admin, DELETED_CATALOG) == ("*",)
