"""`auth/passwords.py`: generated passwords."""

from __future__ import annotations

import pytest

from dockyard.auth import passwords


def test_a_new_password_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """`az login -p -abc` reads `-abc` as an option: such a draw is drawn again."""
    draws = iter(["-sYgfyZDMEOh52LfKYE6xQU--kqFjtmt", "sYgfyZDMEOh52LfKYE6xQU--kqFjtmt-"])
    monkeypatch.setattr(passwords.secrets, "token_urlsafe", lambda size: next(draws))
    assert passwords.new_password() == "sYgfyZDMEOh52LfKYE6xQU--kqFjtmt-"


def test_new_passwords_are_long_and_distinct() -> None:
    drawn = {passwords.new_password() for _ in range(200)}
    assert len(drawn) == 200
    assert all(len(p) == 32 and not p.startswith("-") for p in drawn)
