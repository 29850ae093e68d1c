"""`dockyard.replication.shared_keys`: regions sharing a peer credential sign tokens with
one key, so an access token issued by one region is good at another (its own database,
its own keys), and a region with another credential refuses it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.auth.tokens import InvalidToken
from dockyard.replication.shared_keys import shared_signing_key
from dockyard.server import prepare
from dockyard.services import Services, build_services
from dockyard.settings import load_settings

ACCESS = [{"type": "repository", "name": "app", "actions": ["pull"]}]


@pytest.fixture
def regions(tmp_path: Path) -> Iterator[dict[str, Services]]:
    """westus and eastus share a peer credential; centralus has another. Each has its own
    data directory: its own database and keys."""
    built = {}
    for name, secret in (("westus", "s3cret-a"), ("eastus", "s3cret-a"), ("centralus", "b")):
        settings = load_settings(
            None,
            data_dir=tmp_path / name,
            region={
                "name": name,
                "peers": [{"name": "other", "url": "http://127.0.0.1:9"}],
                "peer_secret": secret,
            },
        )
        prepare(settings)
        built[name] = build_services(settings)
    yield built
    for services in built.values():
        services.close()


def test_the_key_follows_the_secret() -> None:
    one, again = shared_signing_key("s3cret-a"), shared_signing_key("s3cret-a")
    assert one.private_numbers() == again.private_numbers()
    assert one.private_numbers() != shared_signing_key("s3cret-b").private_numbers()


def test_a_token_one_region_issued_is_good_at_another(regions: dict[str, Services]) -> None:
    west, east, stranger = regions["westus"], regions["eastus"], regions["centralus"]
    token, _ = west.tokens.access_token("dockyard.example.com", "admin", ACCESS)
    claims = east.tokens.decode(token, "dockyard.example.com", "access_token")
    assert claims["access"] == ACCESS
    with pytest.raises(InvalidToken):
        stranger.tokens.decode(token, "dockyard.example.com", "access_token")
    assert {k["kid"] for k in west.keys.jwks()["keys"]} & {
        k["kid"] for k in east.keys.jwks()["keys"]
    }
